package emulator

// Numbering names the release whose error-code numbering the emulator speaks.
// The codes come from the iota block in CubeFS proto/errors.go, so they shift
// whenever an error is added; only a few matter to a CSI driver.
type Numbering string

const (
	// Numbering35 is CubeFS 3.4 through 3.5.x (auth mismatch 34).
	Numbering35 Numbering = "3.5"
	// Numbering332 is CubeFS 3.3.2 (auth mismatch 34, user codes one lower).
	Numbering332 Numbering = "3.3.2"
	// Numbering2x is ChubaoFS 2.x and CubeFS up to 3.3.1 (auth mismatch 32,
	// no delayed deletion).
	Numbering2x Numbering = "2.x"
)

// Codes that are the same in every release.
const (
	CodeOK           = 0
	CodeInternal     = 1 // also every wrapped error, "duplicate vol" included
	CodeParamError   = 2
	CodeVolNotExists = 7
)

// Messages the real master sends for its sentinel errors.
const (
	MsgSuccess         = "success"
	MsgVolNotExists    = "vol not exists"
	MsgAuthKeyMismatch = "client and server auth key do not match"
	MsgVolHasDeleted   = "vol has been mark delete, repeated deletions are not allowed"
	MsgNoVolPolicy     = "no vol policy"
	MsgDuplicateUser   = "duplicate user id"
	MsgUserNotExists   = "user not exists"
	MsgDuplicateVol    = "duplicate vol"
	// msgVolNotDelete answers an undelete of a volume that is not forbidden.
	// Its wording was not measured on a real master.
	msgVolNotDelete = "vol is not mark delete"
)

// codeSet holds the release-dependent codes. Zero means "no such error".
type codeSet struct {
	authKeyMismatch int
	volHasDeleted   int
	volNotDelete    int
	noVolPolicy     int
	duplicateUser   int
	userNotExists   int
}

// codeSets follows the table in the CubeFS API research notes (A.2).
var codeSets = map[Numbering]codeSet{
	Numbering35: {
		authKeyMismatch: 34, volHasDeleted: 8, volNotDelete: 9,
		noVolPolicy: 50, duplicateUser: 45, userNotExists: 46,
	},
	Numbering332: {
		authKeyMismatch: 34, volHasDeleted: 8, volNotDelete: 9,
		noVolPolicy: 49, duplicateUser: 44, userNotExists: 45,
	},
	Numbering2x: {
		authKeyMismatch: 32, noVolPolicy: 47, duplicateUser: 42, userNotExists: 43,
	},
}

// AuthKeyMismatchCode returns the auth-key-mismatch code of numbering n.
func AuthKeyMismatchCode(n Numbering) int {
	return codeSets[n].authKeyMismatch
}

// NoVolPolicyCode returns the code of a repeated direct delete under n.
func NoVolPolicyCode(n Numbering) int {
	return codeSets[n].noVolPolicy
}

package cfs

// SensitiveKeys are the parameter and volume-context keys whose values must
// never be logged: the owner is the ChubaoFS credential (authKey is only
// its MD5), and the guide's StorageClass passes it as a plain parameter.
func SensitiveKeys() []string {
	return []string{paramOwner, secretOwner}
}

package cfs

import (
	"fmt"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
)

// ownerFromSecrets reads the owner a secret gives, if any.
func ownerFromSecrets(secrets map[string]string) (master.Owner, bool, error) {
	name, ok := secrets[secretOwner]
	if !ok {
		return master.Owner{}, false, nil
	}
	o, err := master.NewOwner(name)
	if err != nil {
		return master.Owner{}, true, fmt.Errorf("%w: secret key %q: %w", ErrInvalidArgument, secretOwner, err)
	}
	return o, true, nil
}

// createOwner is the owner a new volume gets: the secret's, else the
// StorageClass parameter's. It is never made up, so a retried CreateVolume
// always asks for the same owner; both set and different is refused
// rather than guessed.
func createOwner(params *VolumeParameters, secrets map[string]string) (master.Owner, error) {
	fromSecret, inSecret, err := ownerFromSecrets(secrets)
	if err != nil {
		return master.Owner{}, err
	}
	switch {
	case inSecret && !params.Owner.IsZero() && !fromSecret.Equal(params.Owner):
		return master.Owner{}, fmt.Errorf(
			"%w: the owner in the secret and the StorageClass parameter %q differ", ErrInvalidArgument, paramOwner)
	case inSecret:
		return fromSecret, nil
	case !params.Owner.IsZero():
		return params.Owner, nil
	}
	return master.Owner{}, fmt.Errorf("%w: no owner: set the StorageClass parameter %q or key %q in the "+
		"provisioner secret", ErrInvalidArgument, paramOwner, secretOwner)
}

// volumeOwner is the owner to act on an existing volume with: the
// secret's when one is given (and then it must be the volume's), else the
// owner the master reports for the volume. The master's /admin/getVol
// tells any caller the owner, so ChubaoFS's owner check is no access
// control against whoever reaches the master; the driver still keeps the
// owner out of logs, errors, volume contexts and command lines.
func volumeOwner(vol *master.Volume, secrets map[string]string) (master.Owner, error) {
	fromSecret, inSecret, err := ownerFromSecrets(secrets)
	if err != nil {
		return master.Owner{}, err
	}
	if !inSecret {
		return vol.Owner, nil
	}
	if !fromSecret.Equal(vol.Owner) {
		return master.Owner{}, fmt.Errorf("%w: volume %q belongs to another owner than the secret's",
			ErrPermission, vol.Name)
	}
	return fromSecret, nil
}

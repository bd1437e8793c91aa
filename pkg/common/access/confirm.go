package access

import "github.com/container-storage-interface/spec/lib/go/csi"

// Confirm answers ValidateVolumeCapabilities for an existing volume: the
// capabilities (and, when given, the parameters, checked by parse) are
// confirmed, or the response carries the reason in Message — an
// unsupported capability is an answer, not an error, in this call.
func Confirm(
	rbd bool, req *csi.ValidateVolumeCapabilitiesRequest, parse func(map[string]string) error,
) *csi.ValidateVolumeCapabilitiesResponse {
	if err := Capabilities(rbd, req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}
	}
	if len(req.GetParameters()) > 0 {
		if err := parse(req.GetParameters()); err != nil {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}
		}
	}
	return &csi.ValidateVolumeCapabilitiesResponse{
		Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
			VolumeContext:      req.GetVolumeContext(),
			VolumeCapabilities: req.GetVolumeCapabilities(),
			Parameters:         req.GetParameters(),
		},
	}
}

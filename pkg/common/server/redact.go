package server

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// redactedValue replaces a sensitive map value in logs.
const redactedValue = "***redacted***"

// redactMapKeys returns msg, or a copy of it in which every string map
// entry (parameters, volume_context, ...) whose key is in keys has its
// value replaced. CSI marks only `secrets` fields as secret, which
// protosanitizer strips; some backends take secret-like values as
// StorageClass parameters (the ChubaoFS owner, from which its authKey is
// derived), and those must not reach a log either. The caller's message is
// never modified.
func redactMapKeys(msg any, keys map[string]bool) any {
	m, ok := msg.(proto.Message)
	if !ok || len(keys) == 0 || m == nil {
		return msg
	}
	clone := proto.Clone(m)
	redactMessage(clone.ProtoReflect(), keys)
	return clone
}

func redactMessage(m protoreflect.Message, keys map[string]bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			redactMap(fd, v.Map(), keys)
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				redactMessage(list.Get(i).Message(), keys)
			}
		case fd.Kind() == protoreflect.MessageKind:
			redactMessage(v.Message(), keys)
		}
		return true
	})
}

func redactMap(fd protoreflect.FieldDescriptor, mp protoreflect.Map, keys map[string]bool) {
	if fd.MapKey().Kind() != protoreflect.StringKind {
		return
	}
	if fd.MapValue().Kind() == protoreflect.MessageKind {
		mp.Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
			redactMessage(v.Message(), keys)
			return true
		})
		return
	}
	if fd.MapValue().Kind() != protoreflect.StringKind {
		return
	}
	mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		if keys[k.String()] {
			mp.Set(k, protoreflect.ValueOfString(redactedValue))
		}
		return true
	})
}

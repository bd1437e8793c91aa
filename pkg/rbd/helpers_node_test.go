package rbd

import (
	"fmt"
	"strings"
)

func sprintAll(v any) string {
	return fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

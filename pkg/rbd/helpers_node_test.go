package rbd

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func sprintAll(v any) string {
	return fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func errorCode(err error) codes.Code { return status.Code(err) }

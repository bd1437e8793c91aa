package rbd

import (
	"context"

	"k8s.io/klog/v2"
)

// undoStack collects the inverse of each step of a multi-step operation;
// on failure they run in reverse order.
type undoStack struct {
	steps []undoStep
}

type undoStep struct {
	name string
	fn   func(ctx context.Context) error
}

func (u *undoStack) push(name string, fn func(ctx context.Context) error) {
	u.steps = append(u.steps, undoStep{name: name, fn: fn})
}

// run undoes every step, newest first, even when ctx is already done (the
// caller's deadline must not leave a half-staged volume). Failures are
// logged: the original error is what the caller returns.
func (u *undoStack) run(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i].fn(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Undo step failed", "step", u.steps[i].name)
		}
	}
}

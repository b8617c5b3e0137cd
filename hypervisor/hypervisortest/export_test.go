package hypervisortest

// WithLockedHook makes every per-instance call of the Fake call h with the
// instance's ID once it holds that instance's lock, before the latency: a
// test learns that a call holds the lock, and can keep holding it by
// blocking in h.
func WithLockedHook(h func(id string)) FakeOption {
	return func(o *fakeOptions) { o.locked = h }
}

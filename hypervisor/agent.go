package hypervisor

// AgentDriver is a [Driver] with every operation a compute agent needs day
// to day beyond the power operations: create without starting, reconcile
// and resume after a restart, event replay, live resize, the image cache,
// bulk statistics and host facts. Each part is a small role interface of
// its own, so a consumer can depend on only what it uses.
type AgentDriver interface {
	Driver
	Creator
	Reconciler
	Resumer
	EventReplayer
	Resizer
	ImageCache
	BulkStatsReader
	HostFactsReporter
}

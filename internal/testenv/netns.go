package testenv

// Netns is a network namespace a test created.
type Netns struct {
	// Name is the namespace's name under /run/netns ("" for a namespace
	// held by a process).
	Name string
	// Path is the namespace's path, for netns-aware APIs.
	Path string
}

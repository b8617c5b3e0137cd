// Package stats holds host and instance resource samples, the collectors
// that read them from the kernel, and a Watch helper that delivers samples
// at an interval.
package stats

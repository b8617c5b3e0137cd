// Package networktest holds [Recorder], an in-memory recording fake of
// network.VIFDriver for fast tests of code that plugs VIFs, and
// [TestVIFDriver], the conformance suite every VIF driver passes: the
// Recorder, and each real driver against real namespaces.
//
// The Recorder keeps the state a real driver would (plugged host sides,
// attachments into namespaces it was told are alive), checks its input as
// the real drivers do, records every call, and can fail a chosen call.
package networktest

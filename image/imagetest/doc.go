// Package imagetest helps test code that uses image stores: [MemStore] is
// an in-memory [image.Store] for the tests of callers, and [TestStore] is
// the conformance suite that every store of this module passes (MemStore,
// localdir and Glance alike).
package imagetest

package statestore_test

import (
	"fmt"
	"os"

	"github.com/dockervisor/dockervisor/internal/statestore"
)

func Example() {
	dir, _ := os.MkdirTemp("", "statestore")
	defer os.RemoveAll(dir)

	type record struct {
		PoweredOff bool `json:"powered_off"`
	}
	s, err := statestore.Open(dir, statestore.Options[record]{Version: 1})
	if err != nil {
		panic(err)
	}
	_ = s.Save("vm-1", record{PoweredOff: true})
	r, ok, _ := s.Load("vm-1")
	fmt.Println(ok, r.PoweredOff)
	// Output: true true
}

package imagetest_test

import (
	"testing"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/imagetest"
)

func TestMemStore(t *testing.T) {
	imagetest.TestStore(t, func(t *testing.T) image.Store { return imagetest.NewMemStore() })
}

package imagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
)

// Corrupter is implemented by stores (or test wrappers of stores) that can
// damage an image's stored data behind the store's back. [TestStore] uses it
// to check that Open detects the damage with [image.ErrChecksumMismatch];
// stores without it skip that test.
type Corrupter interface {
	// Corrupt changes the stored data of image id without changing its
	// recorded checksums.
	Corrupt(ctx context.Context, id string) error
}

// TestStore runs the conformance suite against the stores that newStore
// returns. newStore is called once per subtest; the store may be shared
// with other tests (a real Glance is), so the suite only looks at images it
// created, and it deletes them when each subtest ends.
func TestStore(t *testing.T, newStore func(t *testing.T) image.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s image.Store)
	}{
		{"Roundtrip", testRoundtrip},
		{"CreateWithID", testCreateWithID},
		{"List", testList},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"UnsupportedFormat", testUnsupportedFormat},
		{"FailedCreateLeavesNothing", testFailedCreate},
		{"ContextCancel", testContextCancel},
		{"Concurrent", testConcurrent},
		{"ChecksumMismatch", testChecksumMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// randomData returns n random bytes.
func randomData(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// uniqueName returns a name no other test run uses.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%x", prefix, b)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// create stores data and deletes the image when the test ends.
func create(t *testing.T, s image.Store, meta image.Metadata, data []byte) image.Metadata {
	t.Helper()
	got, err := s.Create(t.Context(), meta, bytes.NewReader(data))
	require.NoError(t, err)
	deleteOnCleanup(t, s, got.ID)
	return got
}

func deleteOnCleanup(t *testing.T, s image.Store, id string) {
	t.Cleanup(func() {
		if err := s.Delete(context.WithoutCancel(t.Context()), id); err != nil {
			t.Errorf("cleanup: delete image %s: %v", id, err)
		}
	})
}

func readAll(t *testing.T, s image.Store, id string) ([]byte, error) {
	t.Helper()
	rc, err := s.Open(t.Context(), id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func testRoundtrip(t *testing.T, s image.Store) {
	ctx := t.Context()
	data := randomData(t, 300<<10+17)
	name := uniqueName("roundtrip")
	props := map[string]string{"dockervisor_suite": name, "os_distro": "busybox"}
	got := create(t, s, image.Metadata{Name: name, Properties: props}, data)

	assert.NotEmpty(t, got.ID)
	assert.Equal(t, name, got.Name)
	assert.Equal(t, int64(len(data)), got.Size)
	assert.Equal(t, sha256Hex(data), got.SHA256)
	assert.Equal(t, image.ContainerFormatDocker, got.ContainerFormat)
	assert.Equal(t, image.DiskFormatRaw, got.DiskFormat)
	assert.Equal(t, props, got.Properties)

	st, err := s.Stat(ctx, got.ID)
	require.NoError(t, err)
	assert.Equal(t, got.ID, st.ID)
	assert.Equal(t, name, st.Name)
	assert.Equal(t, got.Size, st.Size)
	assert.Equal(t, got.SHA256, st.SHA256)
	assert.Equal(t, got.Checksum, st.Checksum)
	assert.Equal(t, props, st.Properties)
	assert.Equal(t, image.ContainerFormatDocker, st.ContainerFormat)

	b, err := readAll(t, s, got.ID)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, b), "data read back differs from data written")

	// Returned metadata is a copy: changing it does not change the store.
	st.Properties["os_distro"] = "changed"
	st2, err := s.Stat(ctx, got.ID)
	require.NoError(t, err)
	assert.Equal(t, "busybox", st2.Properties["os_distro"])
}

func testCreateWithID(t *testing.T, s image.Store) {
	ctx := t.Context()
	id := uuid.NewString()
	data := randomData(t, 1000)
	got := create(t, s, image.Metadata{ID: id, Name: uniqueName("withid")}, data)
	assert.Equal(t, id, got.ID)

	_, err := s.Create(ctx, image.Metadata{ID: id, Name: uniqueName("dup")}, bytes.NewReader([]byte("other")))
	require.ErrorIs(t, err, image.ErrAlreadyExists)

	b, err := readAll(t, s, id)
	require.NoError(t, err)
	assert.Equal(t, data, b, "a refused duplicate must not change the existing image")
}

func testList(t *testing.T, s image.Store) {
	ctx := t.Context()
	run := uniqueName("list")
	nameA, nameB := run+"-a", run+"-b"
	a1 := create(t, s, image.Metadata{Name: nameA, Properties: map[string]string{"dockervisor_suite": run, "color": "red"}}, []byte("a1"))
	a2 := create(t, s, image.Metadata{Name: nameA, Properties: map[string]string{"dockervisor_suite": run, "color": "blue"}}, []byte("a2"))
	b1 := create(t, s, image.Metadata{Name: nameB, Properties: map[string]string{"dockervisor_suite": run, "color": "red"}}, []byte("b1"))

	tests := []struct {
		name string
		opts image.ListOptions
		want []string
	}{
		{"by name", image.ListOptions{Name: nameA}, []string{a1.ID, a2.ID}},
		{"by property", image.ListOptions{Properties: map[string]string{"dockervisor_suite": run}}, []string{a1.ID, a2.ID, b1.ID}},
		{"by two properties", image.ListOptions{Properties: map[string]string{"dockervisor_suite": run, "color": "red"}}, []string{a1.ID, b1.ID}},
		{"by name and property", image.ListOptions{Name: nameA, Properties: map[string]string{"color": "blue"}}, []string{a2.ID}},
		{"no match by name", image.ListOptions{Name: run + "-none"}, nil},
		{"no match by property", image.ListOptions{Properties: map[string]string{"dockervisor_suite": run, "color": "green"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.opts)
			require.NoError(t, err)
			var ids []string
			for _, m := range got {
				ids = append(ids, m.ID)
				assert.Equal(t, int64(2), m.Size)
				assert.NotEmpty(t, m.SHA256)
			}
			assert.ElementsMatch(t, tt.want, ids)
		})
	}
}

func testDelete(t *testing.T, s image.Store) {
	ctx := t.Context()
	name := uniqueName("delete")
	got := create(t, s, image.Metadata{Name: name}, []byte("to be deleted"))
	require.NoError(t, s.Delete(ctx, got.ID))

	_, err := s.Stat(ctx, got.ID)
	assert.ErrorIs(t, err, image.ErrNotFound)
	_, err = s.Open(ctx, got.ID)
	assert.ErrorIs(t, err, image.ErrNotFound)
	list, err := s.List(ctx, image.ListOptions{Name: name})
	require.NoError(t, err)
	assert.Empty(t, list)

	assert.NoError(t, s.Delete(ctx, got.ID), "second delete")
	assert.NoError(t, s.Delete(ctx, uuid.NewString()), "delete of an image that never existed")
}

func testNotFound(t *testing.T, s image.Store) {
	ctx := t.Context()
	id := uuid.NewString()
	_, err := s.Stat(ctx, id)
	assert.ErrorIs(t, err, image.ErrNotFound)
	rc, err := s.Open(ctx, id)
	if rc != nil {
		rc.Close()
	}
	assert.ErrorIs(t, err, image.ErrNotFound)
}

func testUnsupportedFormat(t *testing.T, s image.Store) {
	ctx := t.Context()
	name := uniqueName("format")
	_, err := s.Create(ctx, image.Metadata{Name: name, ContainerFormat: "bare", DiskFormat: "qcow2"}, bytes.NewReader([]byte("x")))
	require.ErrorIs(t, err, image.ErrUnsupportedFormat)
	list, err := s.List(ctx, image.ListOptions{Name: name})
	require.NoError(t, err)
	assert.Empty(t, list)
}

// failingReader returns n bytes of data, then err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

var errSource = errors.New("imagetest: source failed")

func testFailedCreate(t *testing.T, s image.Store) {
	tests := []struct {
		name string
		id   string
	}{
		{"store chooses the ID", ""},
		{"caller chooses the ID", uuid.NewString()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			name := uniqueName("failed")
			_, err := s.Create(ctx, image.Metadata{ID: tt.id, Name: name}, &failingReader{n: 200 << 10, err: errSource})
			require.ErrorIs(t, err, errSource)
			if tt.id != "" {
				deleteOnCleanup(t, s, tt.id)
			}
			assertNothing(t, s, name, tt.id)
		})
	}
}

// assertNothing checks that no image named name (and no image id, if set)
// is in the store.
func assertNothing(t *testing.T, s image.Store, name, id string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	list, err := s.List(ctx, image.ListOptions{Name: name})
	require.NoError(t, err)
	assert.Empty(t, list, "a failed create left an image behind")
	if id != "" {
		_, err := s.Stat(ctx, id)
		assert.ErrorIs(t, err, image.ErrNotFound)
	}
}

// cancellingReader cancels its context after n bytes and goes on
// returning data.
type cancellingReader struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n := min(len(p), 32<<10)
	clear(p[:n])
	c.n -= n
	return n, nil
}

func testContextCancel(t *testing.T, s image.Store) {
	t.Run("Create before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		name := uniqueName("cancelled")
		id := uuid.NewString()
		deleteOnCleanup(t, s, id)
		_, err := s.Create(ctx, image.Metadata{ID: id, Name: name}, bytes.NewReader([]byte("data")))
		require.ErrorIs(t, err, context.Canceled)
		assertNothing(t, s, name, id)
	})
	t.Run("Create mid-stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		name := uniqueName("cancelled")
		id := uuid.NewString()
		deleteOnCleanup(t, s, id)
		_, err := s.Create(ctx, image.Metadata{ID: id, Name: name}, &cancellingReader{n: 256 << 10, cancel: cancel})
		require.ErrorIs(t, err, context.Canceled)
		assertNothing(t, s, name, id)
	})
	t.Run("Open", func(t *testing.T) {
		got := create(t, s, image.Metadata{Name: uniqueName("cancelopen")}, randomData(t, 1<<20))
		ctx, cancel := context.WithCancel(t.Context())
		rc, err := s.Open(ctx, got.ID)
		require.NoError(t, err)
		defer rc.Close()
		_, err = io.ReadFull(rc, make([]byte, 1024))
		require.NoError(t, err)
		cancel()
		_, err = io.Copy(io.Discard, rc)
		require.ErrorIs(t, err, context.Canceled)

		_, err = s.Open(ctx, got.ID)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func testConcurrent(t *testing.T, s image.Store) {
	ctx := t.Context()
	run := uniqueName("concurrent")
	shared := randomData(t, 256<<10)
	base := create(t, s, image.Metadata{Name: run + "-shared"}, shared)

	const writers, readers = 4, 4
	var wg sync.WaitGroup
	created := make([]image.Metadata, writers)
	errs := make([]error, writers+readers)
	datas := make([][]byte, writers)
	for i := range writers {
		datas[i] = randomData(t, 64<<10+i)
	}
	for i := range writers {
		wg.Go(func() {
			created[i], errs[i] = s.Create(ctx, image.Metadata{Name: run, Properties: map[string]string{"dockervisor_suite": run}}, bytes.NewReader(datas[i]))
		})
	}
	for i := range readers {
		wg.Go(func() {
			b, err := readAll(t, s, base.ID)
			if err == nil && !bytes.Equal(b, shared) {
				err = errors.New("concurrent read returned other data")
			}
			errs[writers+i] = err
		})
	}
	wg.Wait()
	for i := range writers {
		if created[i].ID != "" {
			deleteOnCleanup(t, s, created[i].ID)
		}
	}
	for _, err := range errs {
		require.NoError(t, err)
	}
	list, err := s.List(ctx, image.ListOptions{Name: run})
	require.NoError(t, err)
	assert.Len(t, list, writers)
	for i, m := range created {
		b, err := readAll(t, s, m.ID)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(datas[i], b), "image %d differs", i)
	}

	// Deleting while others read: every reader sees all of the data or an
	// error, never a short stream that verifies.
	var wg2 sync.WaitGroup
	for range readers {
		wg2.Go(func() {
			rc, err := s.Open(ctx, created[0].ID)
			if err != nil {
				assert.ErrorIs(t, err, image.ErrNotFound)
				return
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err == nil {
				assert.True(t, bytes.Equal(datas[0], b), "a read racing a delete returned other data")
			}
		})
	}
	wg2.Go(func() { assert.NoError(t, s.Delete(ctx, created[0].ID)) })
	wg2.Wait()
}

func testChecksumMismatch(t *testing.T, s image.Store) {
	c, ok := s.(Corrupter)
	if !ok {
		t.Skip("the store does not implement imagetest.Corrupter")
	}
	got := create(t, s, image.Metadata{Name: uniqueName("corrupt")}, randomData(t, 100<<10))
	require.NoError(t, c.Corrupt(t.Context(), got.ID))
	_, err := readAll(t, s, got.ID)
	require.ErrorIs(t, err, image.ErrChecksumMismatch)
}

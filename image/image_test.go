package image_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/image"
)

func TestMetadataForCreate(t *testing.T) {
	tests := []struct {
		name            string
		in              image.Metadata
		wantCF, wantDF  string
		wantUnsupported bool
	}{
		{"empty formats default", image.Metadata{Name: "a"}, image.ContainerFormatDocker, image.DiskFormatRaw, false},
		{"empty disk format defaults", image.Metadata{ContainerFormat: "docker"}, image.ContainerFormatDocker, image.DiskFormatRaw, false},
		{"explicit formats kept", image.Metadata{ContainerFormat: "docker", DiskFormat: "qcow2"}, image.ContainerFormatDocker, "qcow2", false},
		{"other container format", image.Metadata{ContainerFormat: "bare"}, "", "", true},
		{"other container format with disk format", image.Metadata{ContainerFormat: "ova", DiskFormat: "raw"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			got, err := in.ForCreate()
			assert.Equal(t, tt.in, in, "the receiver is unchanged")
			if tt.wantUnsupported {
				require.ErrorIs(t, err, image.ErrUnsupportedFormat)
				assert.ErrorContains(t, err, tt.in.ContainerFormat)
				assert.Zero(t, got)
				return
			}
			require.NoError(t, err)
			want := tt.in
			want.ContainerFormat, want.DiskFormat = tt.wantCF, tt.wantDF
			assert.Equal(t, want, got)
		})
	}
}

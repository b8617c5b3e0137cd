package docker

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
)

// notCarriedByRebuild are the InstanceSpec fields that Rebuild does not
// take from the spawn-time spec, and why. Every other field must come
// through the spec kept in the container's labels into the new container:
// TestRebuildCarriesEverySpecField fails for a new field until it does,
// or is listed here.
var notCarriedByRebuild = map[string]string{
	"Image":              "replaced by Rebuild's image",
	"UserData":           "boot data: its record and the config drive are kept as they are",
	"SSHKeys":            "boot data: its record and the config drive are kept as they are",
	"AdminPassword":      "boot data: its record and the config drive are kept as they are",
	"Files":              "boot data: its record and the config drive are kept as they are",
	"AuthorizedKeysUser": "written into the instance's first file system at spawn only",
	"VIFs":               "in the durable record; the start path attaches them again",
	"NoConfigDrive":      "boot data: the rebuilt instance keeps its config drive, or its lack of one, from the state directory",
}

// TestRebuildCarriesEverySpecField fills every field of an InstanceSpec,
// keeps it as Spawn does (the spec label) and makes the rebuild spec from
// it, as Rebuild does: each field comes through unchanged, but those
// listed in notCarriedByRebuild.
func TestRebuildCarriesEverySpecField(t *testing.T) {
	var spec hypervisor.InstanceSpec
	v := reflect.ValueOf(&spec).Elem()
	typ := v.Type()
	for i := range typ.NumField() {
		fillField(t, typ.Field(i).Name, v.Field(i))
	}
	spec.Boot = hypervisor.BootOS // the one boot mode the label keeps
	cs := newContainerSpec(spec, "sha256:old")
	cs.os = true

	got := rebuildSpec(cs.stored(), "new-image")
	gv := reflect.ValueOf(got)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if _, ok := notCarriedByRebuild[name]; ok {
			continue
		}
		assert.Equal(t, v.Field(i).Interface(), gv.Field(i).Interface(),
			"InstanceSpec.%s is not carried by Rebuild: keep it in storedSpec (labels.go) and instanceSpec, or list it in notCarriedByRebuild with the reason", name)
	}
	assert.Equal(t, "new-image", got.Image)
	for name := range notCarriedByRebuild {
		_, ok := typ.FieldByName(name)
		assert.True(t, ok, "notCarriedByRebuild lists %s, which InstanceSpec does not have", name)
	}
}

// fillField sets f to a value that is not its zero value.
func fillField(t *testing.T, name string, f reflect.Value) {
	t.Helper()
	switch f.Kind() {
	case reflect.String:
		f.SetString("x-" + name)
	case reflect.Int, reflect.Int64, reflect.Int32:
		f.SetInt(3)
	case reflect.Bool:
		f.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(f.Type(), 1, 1)
		if s.Index(0).Kind() == reflect.String {
			s.Index(0).SetString("x-" + name)
		} else if s.Index(0).Kind() == reflect.Uint8 {
			s.Index(0).SetUint('x')
		}
		f.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(f.Type())
		require.Equal(t, reflect.String, f.Type().Key().Kind(), "field %s", name)
		require.Equal(t, reflect.String, f.Type().Elem().Kind(), "field %s", name)
		m.SetMapIndex(reflect.ValueOf("k-"+name), reflect.ValueOf("v"))
		f.Set(m)
	default:
		t.Fatalf("InstanceSpec.%s is a %s: teach fillField a value for it", name, f.Kind())
	}
	require.False(t, f.IsZero(), "field %s filled", name)
}

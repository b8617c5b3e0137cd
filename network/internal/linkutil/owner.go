package linkutil

import "strings"

// OwnerAlias is the interface alias (IFLA_IFALIAS) the drivers give every
// device they create, so that unplug removes only those: a bridge or port
// without it was made by someone else and is left alone.
const OwnerAlias = "dockervisor"

// PortAlias is the alias of a device created for the port portID.
func PortAlias(portID string) string { return OwnerAlias + ":" + portID }

// Owned reports whether alias marks a device as created by a driver of
// this module.
func Owned(alias string) bool {
	return alias == OwnerAlias || strings.HasPrefix(alias, OwnerAlias+":")
}

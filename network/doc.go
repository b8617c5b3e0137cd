// Package network holds the model of an instance's virtual interfaces
// (VIFs): their addresses, subnets, routes and DNS servers, and the errors
// that VIF operations return.
package network

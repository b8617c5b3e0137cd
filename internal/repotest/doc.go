// Package repotest holds tests of the repository as a whole: rules that
// no single package can check for itself. Every exported error of every
// package wraps exactly one error class; the contract packages import
// nothing backend- or Linux-specific; the examples import only the public
// SDK; raw netlink dumps happen only in the one retrying wrapper; no type
// of the Docker backend has more than 60 methods. It has no code of its
// own.
package repotest

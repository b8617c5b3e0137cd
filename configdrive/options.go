package configdrive

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultDHCPDomain is Nova's default [api] dhcp_domain.
const DefaultDHCPDomain = "novalocal"

// DefaultConfigDriveSkipVersions are the EC2 versions Nova leaves off a
// config drive by default ([api] config_drive_skip_versions): every one
// but the newest, 2009-04-04 (and "latest").
var DefaultConfigDriveSkipVersions = []string{
	"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10",
	"2007-12-15", "2008-02-01", "2008-09-01",
}

// Option configures [Build] where Nova has configuration. Each option is
// named after Nova's.
type Option func(*options) error

type options struct {
	dhcpDomain   string
	skipVersions []string
}

func newOptions(opts []Option) (*options, error) {
	o := &options{dhcpDomain: DefaultDHCPDomain, skipVersions: DefaultConfigDriveSkipVersions}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// CheckOptions reports the first invalid option, as Build would, so that
// a constructor that keeps options for later builds can refuse them up
// front.
func CheckOptions(opts ...Option) error {
	_, err := newOptions(opts)
	return err
}

// WithDHCPDomain sets the domain appended to the instance's host name in
// meta_data.json "hostname" and the EC2 hostname, local-hostname and
// public-hostname: Nova's [api] dhcp_domain, [DefaultDHCPDomain] unless
// set. An empty domain writes the bare host name, as Nova does when the
// option is unset. A domain that is no DNS name is [ErrInvalidOption].
func WithDHCPDomain(domain string) Option {
	return func(o *options) error {
		if domain != "" && !validDomain(domain) {
			return fmt.Errorf("%w: dhcp_domain %q is not a domain name", ErrInvalidOption, domain)
		}
		o.dhcpDomain = domain
		return nil
	}
}

// WithConfigDriveSkipVersions sets the EC2 versions left off the config
// drive: Nova's [api] config_drive_skip_versions,
// [DefaultConfigDriveSkipVersions] unless set. None writes every version.
// A version that is neither one of [EC2Versions] nor [Latest] is
// [ErrInvalidOption]. A metadata service, which serves every version
// whatever the option (as Nova's does), builds with none.
func WithConfigDriveSkipVersions(versions ...string) Option {
	return func(o *options) error {
		for _, v := range versions {
			if v != Latest && !slices.Contains(EC2Versions, v) {
				return fmt.Errorf("%w: config_drive_skip_versions: %q is no EC2 metadata version", ErrInvalidOption, v)
			}
		}
		o.skipVersions = slices.Clone(versions)
		return nil
	}
}

// validDomain reports whether d is a DNS name: dot-separated labels of
// letters, digits and inner hyphens, each at most 63 bytes, 253 in all.
func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

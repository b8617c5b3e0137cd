package placement_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/placement"
)

// TestKeystoneClient authenticates against a minimal keystone v3 token
// endpoint (this machine runs no keystone; the stand-in issues the token
// that the real Placement's noauth2 accepts and a catalog that points at
// it), so the catalog lookup, the token and the microversion of
// NewClient are exercised against the real Placement.
func TestKeystoneClient(t *testing.T) {
	t.Parallel()
	ep := testenv.MustHavePlacement(t)
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/v3/auth/tokens") {
			http.NotFound(w, r)
			return
		}
		var body struct {
			Auth struct {
				Identity struct {
					Password struct {
						User struct {
							Name     string `json:"name"`
							Password string `json:"password"`
						} `json:"user"`
					} `json:"password"`
				} `json:"identity"`
			} `json:"auth"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body.Auth.Identity.Password.User.Password != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Subject-Token", testenv.PlacementToken)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": map[string]any{
			"expires_at": "2099-01-01T00:00:00.000000Z",
			"catalog": []any{map[string]any{
				"type": "placement", "name": "placement", "id": "p",
				"endpoints": []any{map[string]any{"id": "e", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": ep}},
			}},
		}})
	}))
	defer ks.Close()
	auth := gophercloud.AuthOptions{IdentityEndpoint: ks.URL + "/v3", Username: "admin", Password: "secret", DomainName: "Default"}
	c, err := placement.NewClient(t.Context(), auth, gophercloud.EndpointOpts{Region: "RegionOne"})
	require.NoError(t, err)
	assert.Equal(t, placement.Microversion, c.Microversion)
	_, err = placement.GetProvider(t.Context(), c, placement.NewUUID())
	require.ErrorIs(t, err, placement.ErrNotFound, "a real answer from Placement through the keystone client")

	auth.Password = "wrong"
	_, err = placement.NewClient(t.Context(), auth, gophercloud.EndpointOpts{Region: "RegionOne"})
	require.Error(t, err)
}

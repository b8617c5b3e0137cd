package docker

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
)

// sshKeyPair writes a new ed25519 private key (0600) into a test directory
// and returns its path and the public key in authorized_keys format.
func sshKeyPair(t *testing.T) (keyFile, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	blk, err := ssh.MarshalPrivateKey(priv, "dockervisor test")
	require.NoError(t, err)
	keyFile = filepath.Join(t.TempDir(), "id_ed25519")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(blk), 0o600))
	sk, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return keyFile, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " test@client"
}

// clientNetns makes a client's network namespace on the lab's bridge, with
// address addr/prefix on its eth0; the namespace and its veth go when the
// test ends.
func (l *netLab) clientNetns(t *testing.T, addr string) testenv.Netns {
	t.Helper()
	client := testenv.NewGuestNetns(t)
	hostEnd := testenv.UniqueName("dvc")
	for _, args := range [][]string{
		{"ip", "link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", client.Path},
		{"ip", "link", "set", hostEnd, "master", l.bridge, "up"},
	} {
		out, err := testenv.RunInNetns(t, t.Context(), l.host, args...)
		require.NoError(t, err, "%v: %s", args, out)
	}
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", addr, "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
	} {
		out, err := testenv.RunInNetns(t, t.Context(), client.Path, args...)
		require.NoError(t, err, "%v: %s", args, out)
	}
	return client
}

// TestOSInstanceSSHLogin: an OS instance with a VIF on a Linux bridge and
// an SSH key on its config drive is reached from a client namespace on the
// same network with `ssh -i key`, as the image's default user: a login, as
// on a cloud VM.
func TestOSInstanceSSHLogin(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		testenv.Missing(t, "ssh (Debian package openssh-client) is not installed")
	}
	lab := newBridgeLab(t)
	e := newOSEnv(t, WithVIFDriver(lab.drv))
	keyFile, pub := sshKeyPair(t)
	v := lab.vif(1, 2)
	spec := e.osSpec("ssh")
	spec.VIFs = []network.VIF{v}
	spec.SSHKeys = []hypervisor.SSHKey{{Name: "login", Data: pub}}
	spec.UserData = []byte("#cloud-config\nlocale: C.UTF-8\n")
	e.spawn(spec)
	st, err := e.waitBooted("ssh", hypervisor.WaitBootOptions{CloudInit: true})
	require.NoError(t, err, "console:\n%s", e.console("ssh"))
	assert.Equal(t, "configdrive", st.CloudInit.Datasource)

	client := lab.clientNetns(t, fmt.Sprintf("10.%d.1.9/24", lab.net))
	out, err := testenv.RunInNetns(t, t.Context(), client.Path, "ssh",
		"-i", keyFile, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR",
		"debian@"+ip4(v), "hostname; id -un; ip -4 -o addr show dev eth0")
	require.NoError(t, err, "ssh: %s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 3, "%s", out)
	assert.Equal(t, "os-ssh", lines[0])
	assert.Equal(t, "debian", lines[1])
	assert.Contains(t, lines[2], ip4(v)+"/24")

	// A key that is not the instance's is refused.
	otherKey, _ := sshKeyPair(t)
	out, err = testenv.RunInNetns(t, t.Context(), client.Path, "ssh",
		"-i", otherKey, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "debian@"+ip4(v), "true")
	require.Error(t, err)
	assert.Contains(t, string(out), "Permission denied")

	require.NoError(t, e.drv.Destroy(t.Context(), "ssh"))
	e.requireGone("ssh")
	lab.requireNothingLeftOf(t, v)
}

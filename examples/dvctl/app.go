package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/examples/dvctl/lab"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/hypervisor/docker"
	"github.com/dockervisor/dockervisor/image"
)

// globals are the flags every command takes. Each has an environment
// variable as its default, so a shell can be set up once.
type globals struct {
	output string // "table" or "json"

	dockerHost string // DOCKER_HOST
	tlsVerify  bool   // DOCKER_TLS_VERIFY
	tls        bool   // TLS without verification (lab engines only)
	certPath   string // DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem

	stateDir    string // DVCTL_STATE_DIR
	labelPrefix string // DVCTL_LABEL_PREFIX
	namePrefix  string // DVCTL_NAME_PREFIX
	node        string // DVCTL_NODE
	stopTimeout time.Duration

	store    string // DVCTL_STORE: "", "local" or "glance"
	imageDir string // DVCTL_IMAGE_DIR
	glance   string // DVCTL_GLANCE_URL: a Glance without keystone
	osCloud  string // OS_CLOUD: a cloud of clouds.yaml

	hostNetns string // DVCTL_HOST_NETNS: host side of VIFs outside labs
}

// app holds what the commands of one run share: the streams, the flags,
// and the driver and store, made on first use and closed at the end.
type app struct {
	ctx    context.Context
	in     io.Reader
	out    io.Writer
	errOut io.Writer
	g      globals
	drv    *docker.Driver
	router *lab.VIFRouter
	// snapProgress draws snapshot uploads.
	snapProgress snapshotProgress
	st           image.Store
	closers      []func() error
}

// Run runs the command line args and returns the exit code.
func Run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	a := &app{ctx: ctx, in: in, out: out, errOut: errOut}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	err := root.ExecuteContext(ctx)
	err = errors.Join(err, a.close())
	if err == nil {
		return ExitOK
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", context.Canceled, err)
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status) // exec: the command's own status
	}
	code, class := classify(err)
	if a.g.output == "json" {
		_ = json.NewEncoder(errOut).Encode(map[string]any{"error": err.Error(), "class": class, "exit_code": code})
	} else {
		fmt.Fprintf(errOut, "dvctl: %v\n", err)
	}
	return code
}

func (a *app) close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
	}
	return def
}

func envBool(key string) bool {
	v := strings.ToLower(os.Getenv(key))
	return v != "" && v != "0" && v != "false" && v != "no"
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "dvctl",
		Short: "Drive Docker containers as virtual machines",
		Long: `dvctl drives a dockervisor hypervisor: instances (containers run as virtual
machines) on a Docker engine, the images they boot from in a local directory
or in OpenStack Glance, and labs of instances brought up from one YAML file.

The engine comes from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as
for the docker CLI. An image store is a local directory (--image-dir) or
Glance (--glance URL for a Glance without keystone, or --store glance with
OS_CLOUD and clouds.yaml, or the OS_* variables). With an image store, spawn
takes a store image ID and fetches it into the engine; without one, an image
reference the engine has.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q (see dvctl --help)", args[0])}
			}
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch a.g.output {
			case "table", "json":
			default:
				return usageError{fmt.Errorf("--output %q: want table or json", a.g.output)}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVarP(&a.g.output, "output", "o", "table", "output format: table or json")
	f.StringVar(&a.g.dockerHost, "docker-host", envOr("DOCKER_HOST", ""), "engine endpoint (env DOCKER_HOST; default the local socket)")
	f.BoolVar(&a.g.tlsVerify, "tlsverify", envBool("DOCKER_TLS_VERIFY"), "TLS to the engine, verifying its certificate (env DOCKER_TLS_VERIFY)")
	f.BoolVar(&a.g.tls, "tls", false, "TLS to the engine without verifying its certificate (labs only)")
	f.StringVar(&a.g.certPath, "cert-path", envOr("DOCKER_CERT_PATH", defaultCertPath()), "directory with ca.pem, cert.pem and key.pem (env DOCKER_CERT_PATH)")
	f.StringVar(&a.g.stateDir, "state-dir", envOr("DVCTL_STATE_DIR", docker.DefaultStateDir), "the driver's state directory (env DVCTL_STATE_DIR)")
	f.StringVar(&a.g.labelPrefix, "label-prefix", envOr("DVCTL_LABEL_PREFIX", docker.DefaultLabelPrefix), "label prefix of the driver's containers (env DVCTL_LABEL_PREFIX)")
	f.StringVar(&a.g.namePrefix, "name-prefix", envOr("DVCTL_NAME_PREFIX", docker.DefaultNamePrefix), "container name prefix (env DVCTL_NAME_PREFIX)")
	f.StringVar(&a.g.node, "node", envOr("DVCTL_NODE", ""), "node name to report (env DVCTL_NODE; default the engine's host name)")
	f.DurationVar(&a.g.stopTimeout, "default-stop-timeout", envDuration("DVCTL_STOP_TIMEOUT", docker.DefaultStopTimeout), "graceful stop timeout when a command does not set one (env DVCTL_STOP_TIMEOUT)")
	f.StringVar(&a.g.store, "store", envOr("DVCTL_STORE", ""), "image store: local or glance (env DVCTL_STORE; default: local with --image-dir, glance with --glance)")
	f.StringVar(&a.g.imageDir, "image-dir", envOr("DVCTL_IMAGE_DIR", ""), "local image store directory (env DVCTL_IMAGE_DIR)")
	f.StringVar(&a.g.glance, "glance", envOr("DVCTL_GLANCE_URL", ""), "endpoint of a Glance without keystone (env DVCTL_GLANCE_URL)")
	f.StringVar(&a.g.osCloud, "os-cloud", envOr("OS_CLOUD", ""), "cloud in clouds.yaml for Glance (env OS_CLOUD); without it the OS_* variables")
	f.StringVar(&a.g.hostNetns, "host-netns", envOr("DVCTL_HOST_NETNS", ""), "network namespace path for the host side of VIFs of instances outside labs (env DVCTL_HOST_NETNS; default this process's)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("store", cobra.FixedCompletions([]string{"local", "glance"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.MarkPersistentFlagDirname("state-dir")
	_ = root.MarkPersistentFlagDirname("image-dir")
	_ = root.MarkPersistentFlagDirname("cert-path")

	root.AddGroup(&cobra.Group{ID: "instance", Title: "Instances:"},
		&cobra.Group{ID: "observe", Title: "Observing:"},
		&cobra.Group{ID: "guest", Title: "Guest access:"},
		&cobra.Group{ID: "more", Title: "Images, labs and networking:"})
	for _, c := range append(append(a.instanceCommands(), a.snapshotCommands()...), a.agentCommands()...) {
		c.GroupID = "instance"
		root.AddCommand(c)
	}
	for _, c := range a.guestCommands() {
		c.GroupID = "guest"
		root.AddCommand(c)
	}
	for _, c := range a.observeCommands() {
		c.GroupID = "observe"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.imageCommand(), a.labCommand(), a.vifCommand()} {
		c.GroupID = "more"
		root.AddCommand(c)
	}
	root.AddCommand(&cobra.Command{
		Use:   "exit-codes",
		Short: "Explain the exit codes",
		Args:  noArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprint(cmd.OutOrStdout(), exitCodeHelp) },
	})
	return root
}

func defaultCertPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker")
}

// Argument checkers that report usage errors (exit code 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s takes at least %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error { return exactArgs(0)(cmd, args) }

// info returns Info of instance id from the driver.
func (a *app) info(ctx context.Context, id string) (hypervisor.InstanceInfo, error) {
	drv, err := a.driver()
	if err != nil {
		return hypervisor.InstanceInfo{}, err
	}
	return drv.Info(ctx, id)
}

// driver returns the Docker driver, built from the flags on first use.
// Building does not dial: the first call pings the engine.
func (a *app) driver() (*docker.Driver, error) {
	if a.drv != nil {
		return a.drv, nil
	}
	opts := []docker.Option{
		docker.WithStateDir(a.g.stateDir),
		docker.WithLabelPrefix(a.g.labelPrefix),
		docker.WithNamePrefix(a.g.namePrefix),
		docker.WithStopTimeout(a.g.stopTimeout),
	}
	if a.g.dockerHost != "" {
		opts = append(opts, docker.WithDockerHost(a.g.dockerHost))
	}
	if a.g.node != "" {
		opts = append(opts, docker.WithNodeName(a.g.node))
	}
	if a.g.tlsVerify || a.g.tls {
		cfg := docker.TLSConfig{InsecureSkipVerify: !a.g.tlsVerify}
		if a.g.certPath != "" {
			cfg.CAFile = existing(filepath.Join(a.g.certPath, "ca.pem"))
			cfg.CertFile = existing(filepath.Join(a.g.certPath, "cert.pem"))
			cfg.KeyFile = existing(filepath.Join(a.g.certPath, "key.pem"))
		}
		opts = append(opts, docker.WithTLS(cfg))
	}
	st, err := a.storeIfAny()
	if err != nil {
		return nil, err
	}
	if st != nil {
		// Snapshots go to the same store, so spawn and rebuild take
		// their IDs.
		opts = append(opts, docker.WithImageStore(progressReader{Reader: st, a: a}), docker.WithSnapshotStore(st))
	}
	a.snapProgress.a = a
	opts = append(opts, docker.WithSnapshotProgress(a.snapProgress.report))
	// VIFs of lab instances are plugged in their lab's namespace, others
	// by a Linux bridge driver in --host-netns.
	lb, closeLB, err := bridgeDriver(a.g.hostNetns)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, closeLB)
	router := lab.NewVIFRouter(a.labDir(), lb)
	a.closers = append(a.closers, router.Close)
	a.router = router
	// The router is also the port observer that filters lab ports with
	// security groups from the moment they are plugged.
	opts = append(opts, docker.WithVIFDriver(router), docker.WithPortObserver(router))
	// Lab instances are published to their lab's metadata service.
	md := lab.NewMetadataRouter(a.labDir())
	a.closers = append(a.closers, md.Close)
	opts = append(opts, docker.WithMetadataService(md))
	drv, err := docker.New(opts...)
	if err != nil {
		return nil, err
	}
	a.drv = drv
	a.closers = append(a.closers, drv.Close)
	return drv, nil
}

// labDir is where the labs' state files live.
func (a *app) labDir() string { return filepath.Join(a.g.stateDir, "labs") }

func existing(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// parseKV parses repeated KEY=VALUE flags.
func parseKV(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--%s %q: want KEY=VALUE", flag, kv)}
		}
		m[k] = v
	}
	return m, nil
}

// completeInstances completes instance IDs from the driver's list.
func (a *app) completeInstances(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	drv, err := a.driver()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	list, err := drv.List(ctx, hypervisor.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var ids []string
	for _, in := range list {
		if strings.HasPrefix(in.ID, toComplete) {
			ids = append(ids, in.ID+"\t"+in.State.String())
		}
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

// completeImages completes store image IDs.
func (a *app) completeImages(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	st, err := a.storeIfAny()
	if err != nil || st == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	list, err := st.List(ctx, image.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var ids []string
	for _, m := range list {
		if strings.HasPrefix(m.ID, toComplete) {
			ids = append(ids, m.ID+"\t"+m.Name)
		}
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

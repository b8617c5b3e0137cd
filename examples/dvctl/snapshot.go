package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/snapshot"
)

// snapshotProgress draws the upload of a snapshot on the error stream when
// it is a terminal: a spinner with the bytes stored so far (the size is
// not known before the end), and the phase.
type snapshotProgress struct {
	a   *app
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func (p *snapshotProgress) report(id string, pr snapshot.Progress) {
	if !isTerminal(p.a.errOut) || p.a.g.output == "json" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(p.a.errOut),
			progressbar.OptionShowBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100_000_000),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSpinnerType(14),
		)
	}
	p.bar.Describe(fmt.Sprintf("snapshot %s: %s", id, pr.Phase))
	_ = p.bar.Set64(pr.Bytes)
	if pr.Phase == snapshot.PhaseDone {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

func (p *snapshotProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

func (a *app) snapshotCommands() []*cobra.Command {
	var props []string
	snap := &cobra.Command{
		Use:   "snapshot ID NAME",
		Short: "Store an instance's file system as a new image in the image store",
		Long: `Store the instance's file system as a new image named NAME in the image store
(--image-dir or Glance), with a progress bar of the upload on a terminal. A
running instance is paused for the commit and runs again afterwards. The new
image's ID can be given to spawn or rebuild. Ctrl-C rolls everything back.`,
		Example:           "  dvctl --image-dir ./images snapshot web web-before-upgrade\n  dvctl --image-dir ./images rebuild web <snapshot ID>",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parseKV("property", props)
			if err != nil {
				return err
			}
			drv, err := a.driver()
			if err != nil {
				return err
			}
			defer a.snapProgress.finish()
			m, err := drv.Snapshot(cmd.Context(), args[0], hypervisor.SnapshotRequest{Name: args[1], Properties: p})
			if err != nil {
				return err
			}
			return a.emit(m, func(w io.Writer) { imageTable(w, []image.Metadata{m}) })
		},
	}
	snap.Flags().StringArrayVar(&props, "property", nil, "KEY=VALUE store property of the image (repeatable)")
	rebuild := &cobra.Command{
		Use:   "rebuild ID IMAGE",
		Short: "Give an instance a fresh file system from IMAGE (a snapshot, say)",
		Long: `Replace the instance's file system with a fresh one from IMAGE (a store image
ID with an image store, such as a snapshot's; otherwise an engine image
reference), keeping its ID, name, limits, command, environment, labels,
metadata, config drive and network interfaces. A running instance runs again
afterwards; a stopped one stays stopped.`,
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeInstances,
		RunE: func(cmd *cobra.Command, args []string) error {
			drv, err := a.driver()
			if err != nil {
				return err
			}
			return a.eachID(cmd, args[:1], func(c *cobra.Command, id string) error {
				return drv.Rebuild(c.Context(), id, args[1])
			})
		},
	}
	return []*cobra.Command{snap, rebuild}
}

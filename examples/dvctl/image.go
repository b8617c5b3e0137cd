package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/dockervisor/dockervisor/image"
	"github.com/dockervisor/dockervisor/image/engine"
)

func (a *app) imageCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Manage images in the image store (a local directory or Glance)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("image: name a subcommand (see dvctl image --help)")}
		},
	}
	c.AddCommand(a.imageListCommand(), a.imageShowCommand(), a.imageImportCommand(), a.imageExportCommand(), a.imageDeleteCommand(),
		a.imagePrefetchCommand(), a.imagePruneCommand())
	return c
}

func imageTable(w io.Writer, list []image.Metadata) {
	row(w, "ID", "NAME", "FORMAT", "SIZE", "SHA256", "CREATED")
	for _, m := range list {
		row(w, m.ID, dash(m.Name), m.ContainerFormat+"/"+m.DiskFormat, bytesIEC(uint64(max(m.Size, 0))), dash(short(m.SHA256, 12)), ago(m.CreatedAt))
	}
}

func (a *app) imageListCommand() *cobra.Command {
	var (
		opts  image.ListOptions
		props []string
	)
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List store images",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Properties, err = parseKV("property", props); err != nil {
				return err
			}
			st, err := a.store()
			if err != nil {
				return err
			}
			list, err := st.List(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if list == nil {
				list = []image.Metadata{}
			}
			return a.emit(list, func(w io.Writer) { imageTable(w, list) })
		},
	}
	c.Flags().StringVar(&opts.Name, "name", "", "only images with this name")
	c.Flags().StringArrayVar(&props, "property", nil, "only images with property KEY=VALUE (repeatable)")
	return c
}

func (a *app) imageShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "show ID",
		Short:             "Show a store image's metadata",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeImages,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			m, err := st.Stat(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.emit(m, func(w io.Writer) {
				row(w, "ID", m.ID)
				row(w, "Name", dash(m.Name))
				row(w, "Format", m.ContainerFormat+"/"+m.DiskFormat)
				row(w, "Size", fmt.Sprintf("%s (%d bytes)", bytesIEC(uint64(max(m.Size, 0))), m.Size))
				row(w, "SHA256", dash(m.SHA256))
				row(w, "Checksum", dash(m.Checksum))
				row(w, "Created", ago(m.CreatedAt))
				row(w, "Properties", kvs(m.Properties))
			})
		},
	}
}

func (a *app) imageImportCommand() *cobra.Command {
	var (
		meta       image.Metadata
		props      []string
		fromEngine bool
	)
	c := &cobra.Command{
		Use:   "import FILE|-|--from-engine REF",
		Short: "Store an image archive (docker save or OCI layout), from a file, stdin or the engine",
		Long: `Store an image archive in the image store: a 'docker save' tarball or an OCI
image-layout archive, read from FILE, from standard input (-), or, with
--from-engine, saved from the engine image REF (repository:tag). The archive is
streamed; a failed or interrupted import leaves nothing in the store. The
format is checked when an instance is spawned from the image.`,
		Example: `  docker save busybox:1 | dvctl image import - --id busybox --name busybox
  dvctl image import --from-engine test/busybox:1 --id busybox`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if meta.Properties, err = parseKV("property", props); err != nil {
				return err
			}
			st, err := a.store()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var (
				src  io.Reader
				size int64 = -1
				what       = args[0]
			)
			switch {
			case fromEngine:
				api, err := a.engineClient()
				if err != nil {
					return err
				}
				rc, err := engine.Save(ctx, api, args[0])
				if err != nil {
					return err
				}
				defer rc.Close()
				src = rc
				if meta.Name == "" {
					meta.Name = args[0]
				}
			case args[0] == "-":
				src, what = a.in, "stdin"
			default:
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("%w: %w", image.ErrInvalidArgument, err)
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					size = fi.Size()
				}
				src = f
				if meta.Name == "" {
					meta.Name = filepath.Base(args[0])
				}
			}
			r, finish := a.progress(src, size, "import "+what)
			m, err := st.Create(ctx, meta, r)
			finish()
			if err != nil {
				return err
			}
			return a.emit(m, func(w io.Writer) { imageTable(w, []image.Metadata{m}) })
		},
	}
	f := c.Flags()
	f.StringVar(&meta.ID, "id", "", "image ID (default: the store chooses)")
	f.StringVar(&meta.Name, "name", "", "display name (default: the file name or reference)")
	f.StringArrayVar(&props, "property", nil, "property KEY=VALUE (repeatable)")
	f.BoolVar(&fromEngine, "from-engine", false, "save the engine image REF instead of reading a file")
	return c
}

func (a *app) imageExportCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "export ID FILE|-",
		Short:             "Write a store image's archive to a file or stdout, verified",
		Long:              "Write a store image's archive to FILE or standard output (-). The data is verified against its checksums; a mismatch fails with exit code 9 and removes FILE.",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeImages,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			st, err := a.store()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			m, err := st.Stat(ctx, args[0])
			if err != nil {
				return err
			}
			rc, err := st.Open(ctx, args[0])
			if err != nil {
				return err
			}
			defer rc.Close()
			var dst io.Writer = a.out
			if args[1] != "-" {
				tmp, terr := os.CreateTemp(filepath.Dir(args[1]), ".dvctl-export-*")
				if terr != nil {
					return terr
				}
				defer func() {
					if err == nil {
						err = tmp.Close()
					}
					if err == nil {
						err = os.Rename(tmp.Name(), args[1])
					}
					if err != nil {
						tmp.Close()
						os.Remove(tmp.Name())
					}
				}()
				dst = tmp
			}
			r, finish := a.progress(rc, m.Size, "export "+m.ID)
			_, err = io.Copy(dst, readerCtx{ctx: cmd.Context(), r: r})
			finish()
			return err
		},
	}
}

// readerCtx stops a copy when ctx ends.
type readerCtx struct {
	ctx interface{ Err() error }
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (a *app) imageDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "delete ID...",
		Aliases:           []string{"rm"},
		Short:             "Delete store images (a missing one is no error)",
		Args:              minArgs(1),
		ValidArgsFunction: a.completeImages,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.store()
			if err != nil {
				return err
			}
			var deleted []string
			for _, id := range args {
				if err := st.Delete(cmd.Context(), id); err != nil {
					return err
				}
				deleted = append(deleted, id)
			}
			return a.emit(map[string][]string{"deleted": deleted}, func(w io.Writer) {
				row(w, "DELETED")
				for _, id := range deleted {
					row(w, id)
				}
			})
		},
	}
}

// engineClient returns a moby client for the engine the flags name, for
// moving images between the engine and the store.
func (a *app) engineClient() (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if a.g.dockerHost != "" {
		opts = append(opts, client.WithHost(a.g.dockerHost))
	}
	if a.g.tlsVerify {
		opts = append(opts, client.WithTLSClientConfig(
			existing(filepath.Join(a.g.certPath, "ca.pem")),
			existing(filepath.Join(a.g.certPath, "cert.pem")),
			existing(filepath.Join(a.g.certPath, "key.pem"))))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", image.ErrUnavailable, err)
	}
	a.closers = append(a.closers, c.Close)
	return c, nil
}

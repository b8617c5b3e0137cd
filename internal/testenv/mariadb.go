package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// mariaDB is a private MariaDB server: its own data directory and unix
// socket, no TCP listener, root without a password.
type mariaDB struct {
	socket string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *tailWriter
}

// startMariaDB creates a database server in dir (which it creates), starts
// it with database created and waits until it accepts connections. The
// server dies with the test process (parent-death signal).
func startMariaDB(ctx context.Context, bins map[string]string, dir, database string) (*mariaDB, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	// Small files and buffers: a test database holds a few thousand rows.
	tuning := []string{"--innodb-log-file-size=16M", "--innodb-buffer-pool-size=32M"}
	// mariadbd refuses to run as root unless told to.
	var user []string
	if os.Geteuid() == 0 {
		user = []string{"--user=root"}
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, user...)
	if err := runSetup(ctx, dir, bins["mariadb-install-db"], append(args, tuning...)...); err != nil {
		return nil, err
	}
	initSQL := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(initSQL, []byte("CREATE DATABASE IF NOT EXISTS "+database+" CHARACTER SET utf8mb4;\n"), 0o600); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "mysqld.sock")
	args = append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + sock, "--skip-networking",
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--init-file=" + initSQL,
		"--skip-log-bin", "--performance-schema=OFF",
		// The log is flushed once a second, not at every commit: a test
		// database need not survive a power cut.
		"--innodb-flush-log-at-trx-commit=2",
		// Placement retries an allocation write that lost a generation
		// race inside the same transaction and checks capacity again
		// there; under InnoDB's default REPEATABLE READ that second check
		// reads the usage of the first one's snapshot and lets a provider
		// be allocated beyond its capacity. READ COMMITTED reads the
		// usage committed meanwhile.
		"--transaction-isolation=READ-COMMITTED",
	}, user...)
	cmd := exec.Command(bins["mariadbd"], append(args, tuning...)...)
	cmd.Dir = dir
	w := &tailWriter{buf: &bytes.Buffer{}, max: 64 << 10}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = daemonAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	db := &mariaDB{socket: sock, cmd: cmd, exited: make(chan struct{}), log: w}
	go func() {
		_ = cmd.Wait()
		close(db.exited)
	}()
	if err := db.waitReady(ctx); err != nil {
		db.stop()
		return nil, fmt.Errorf("mariadbd: %w: %s", err, w.String())
	}
	return db, nil
}

// waitReady waits until the server greets a client on its socket, which
// it does once the init file has run and connections are served.
func (db *mariaDB) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if greets(db.socket) {
			return nil
		}
		select {
		case <-db.exited:
			return errors.New("exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("no greeting on %s: %w", db.socket, ctx.Err())
		case <-tick.C:
		}
	}
}

// greets reports whether a MySQL server on sock sends its handshake
// (a packet whose payload starts with protocol version 10).
func greets(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	hdr := make([]byte, 5)
	_, err = io.ReadFull(c, hdr)
	return err == nil && hdr[4] == 10
}

// stop sends SIGTERM, waits for the server to exit (killing it after
// 30 s) and leaves the files to the caller.
func (db *mariaDB) stop() { terminate(db.cmd.Process, db.exited, syscall.SIGTERM, 30*time.Second) }

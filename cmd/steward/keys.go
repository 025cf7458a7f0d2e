package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"steward/internal/app"
	"steward/internal/clock"
	"steward/internal/door"
)

// runKeys runs `steward keys rotate --new-key-file FILE`: every live data
// key is re-wrapped under the new master key in one transaction. The old
// master comes from the usual configuration (STEWARD_MASTER_KEY or
// --key-file). Stop other Steward processes first, and restart them with
// the new key.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return errors.New("keys: want rotate")
	}
	fs := newFlagSet("keys rotate", stderr, "keys rotate --new-key-file FILE [flags]")
	f := app.NewFlags(fs, false)
	newFile := fs.String("new-key-file", "", "file holding the new 32-byte master key (raw or base64)")
	if err := parse(fs, args[1:]); err != nil {
		return quiet(err)
	}
	if *newFile == "" {
		return errors.New("keys rotate: --new-key-file is required")
	}
	cfg, err := f.Config(getenv)
	if err != nil {
		return err
	}
	next, err := door.ReadKeyFile(*newFile)
	if err != nil {
		return err
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	old, err := door.LoadMaster(getenv, cfg.KeyFile, cfg.DataDir, false, newLogger(stderr))
	if err != nil {
		return fmt.Errorf("keys rotate: the current master key is needed: %w", err)
	}
	n, err := door.RotateMaster(ctx, db, old, next, clock.Real{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-wrapped %d data keys from %s to %s; restart Steward with the new key\n", n, old.ID, next.ID)
	return nil
}

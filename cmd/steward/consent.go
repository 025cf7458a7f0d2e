package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"steward/internal/app"
	"steward/internal/consent"
	"steward/internal/door"
)

// runConsent runs `steward consent verify RECEIPT`: it checks a consent
// receipt's Ed25519 signature offline, against a public key given with
// --public-key (a file holding the key as JWK, PEM, base64 or hex, as
// /.well-known/steward/receipt-key serves it), or else against the
// deployment's own key, derived from its master key.
func runConsent(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("consent: want verify")
	}
	fs := newFlagSet("consent verify", stderr, "consent verify [--public-key FILE] RECEIPT_FILE|-")
	f := app.NewFlags(fs, false)
	pubFile := fs.String("public-key", "", "file with the deployment's receipt public key; without it the key is derived from the master key")
	if err := parse(fs, args[1:]); err != nil {
		return quiet(err)
	}
	if fs.NArg() != 1 {
		return errors.New("consent verify: name one receipt file, or - for standard input")
	}
	var receipt []byte
	var err error
	if fs.Arg(0) == "-" {
		receipt, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		receipt, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		return fmt.Errorf("consent verify: read receipt: %w", err)
	}
	var pub []byte
	if *pubFile != "" {
		raw, err := os.ReadFile(*pubFile)
		if err != nil {
			return fmt.Errorf("consent verify: read public key: %w", err)
		}
		if pub, err = consent.ParsePublicKey(raw); err != nil {
			return err
		}
	} else {
		cfg, err := f.Config(getenv)
		if err != nil {
			return err
		}
		// A development key in the data directory is read, never created:
		// a new key could not have signed anything.
		_, statErr := os.Stat(filepath.Join(cfg.DataDir, "master.key"))
		master, err := door.LoadMaster(getenv, cfg.KeyFile, cfg.DataDir, cfg.DevKey() && statErr == nil, newLogger(stderr))
		if err != nil {
			return fmt.Errorf("consent verify: without --public-key the master key is needed: %w", err)
		}
		signer, err := consent.NewSigner(master.Derive(consent.SigningInfo, 32))
		if err != nil {
			return err
		}
		pub = signer.PublicKey()
	}
	if err := consent.VerifyReceipt(pub, receipt); err != nil {
		return fmt.Errorf("consent verify: the receipt does not verify: %w", err)
	}
	fmt.Fprintln(stdout, "receipt signature valid")
	return nil
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"steward/internal/app"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/policy"
)

const usage = `steward — the privacy-first user-data backend

Usage:
  steward [serve] [flags]              run the server (the default)
  steward migrate [flags]              apply database migrations and exit
  steward policy check FILE...         validate policies: every problem with file:line and a fix
  steward policy render [--format markdown|html] FILE
  steward policy diff OLD NEW          classify a change as minor or significant
  steward audit verify [flags]         verify the audit log's hash chain
  steward requests list [--all] | show ID [flags]      the rights-request queue, by due date
  steward keys rotate --new-key-file FILE [flags]      re-wrap every data key under a new master key
  steward consent verify [--public-key FILE] RECEIPT   check a consent receipt's signature offline
  steward users create-staff --email E --role R --password-stdin [flags]
  steward rights reapply [--ledger FILE]... [flags]   erase again after restoring a backup
  steward rights coverage [flags]      how every personal table is exported and erased
  steward retention run [--dry-run] [flags]   sweep what the policy no longer allows to keep

Run "steward COMMAND --help" for the flags of a command.
`

// run is the whole program, callable from tests: args exclude the program
// name, getenv replaces os.Getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout, stderr)
	case "policy":
		return runPolicy(args, stdout, stderr)
	case "audit":
		return runAudit(ctx, args, getenv, stdout, stderr)
	case "requests":
		return runRequests(ctx, args, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args, getenv, stdout, stderr)
	case "consent":
		return runConsent(ctx, args, getenv, stdin, stdout, stderr)
	case "users":
		return runUsers(ctx, args, getenv, stdin, stdout, stderr)
	case "rights":
		return runRights(ctx, args, getenv, stdout, stderr)
	case "retention":
		return runRetention(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// errHelp is returned after --help printed the usage: not a failure.
var errHelp = errors.New("help shown")

func newFlagSet(name string, stderr io.Writer, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: steward %s\n\n", summary)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	return nil
}

func quiet(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// openApp reads the storage flags with their environment and opens the
// services on the database, for a command that works on it and exits.
func openApp(ctx context.Context, f *app.Flags, getenv func(string) string, stderr io.Writer) (*app.App, error) {
	cfg, err := f.Config(getenv)
	if err != nil {
		return nil, err
	}
	return app.Open(ctx, cfg, getenv, newLogger(stderr), app.Options{})
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr, "serve [flags]")
	f := app.NewFlags(fs, true)
	if err := parse(fs, args); err != nil {
		return quiet(err)
	}
	cfg, err := f.Config(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	a, err := app.Open(ctx, cfg, getenv, log, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, stdout, nil)
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr, "migrate [flags]")
	f := app.NewFlags(fs, false)
	if err := parse(fs, args); err != nil {
		return quiet(err)
	}
	cfg, err := f.Config(getenv)
	if err != nil {
		return err
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "database %s is up to date\n", db.Location)
	return nil
}

func runPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("policy: want check, render or diff")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "check":
		fs := newFlagSet("policy check", stderr, "policy check FILE...")
		if err := parse(fs, args); err != nil {
			return quiet(err)
		}
		if fs.NArg() == 0 {
			return errors.New("policy check: name at least one policy file")
		}
		failed := 0
		for _, path := range fs.Args() {
			if _, err := app.LoadPolicy(path); err != nil {
				fmt.Fprintln(stdout, err)
				failed++
				continue
			}
			fmt.Fprintf(stdout, "%s: ok\n", path)
		}
		if failed > 0 {
			return fmt.Errorf("policy check: %d of %d policies have problems", failed, fs.NArg())
		}
		return nil
	case "render":
		fs := newFlagSet("policy render", stderr, "policy render [--format markdown|html] FILE")
		format := fs.String("format", "markdown", "markdown or html")
		if err := parse(fs, args); err != nil {
			return quiet(err)
		}
		if fs.NArg() != 1 {
			return errors.New("policy render: name one policy file")
		}
		p, err := app.LoadPolicy(fs.Arg(0))
		if err != nil {
			return err
		}
		out, err := policy.Render(p, policy.Meta{Hash: p.Hash()}, *format)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	case "diff":
		fs := newFlagSet("policy diff", stderr, "policy diff OLD NEW")
		if err := parse(fs, args); err != nil {
			return quiet(err)
		}
		if fs.NArg() != 2 {
			return errors.New("policy diff: name the old and the new policy file")
		}
		oldP, err := app.LoadPolicy(fs.Arg(0))
		if err != nil {
			return err
		}
		newP, err := app.LoadPolicy(fs.Arg(1))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, policy.Diff(oldP, newP).String())
		return nil
	default:
		return fmt.Errorf("policy: unknown subcommand %q (want check, render or diff)", sub)
	}
}

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("audit: want verify")
	}
	fs := newFlagSet("audit verify", stderr, "audit verify [flags]")
	f := app.NewFlags(fs, false)
	if err := parse(fs, args[1:]); err != nil {
		return quiet(err)
	}
	cfg, err := f.Config(getenv)
	if err != nil {
		return err
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.New(db, clock.Real{}).Verify(ctx)
	if err != nil {
		return err
	}
	if !rep.OK {
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, p)
		}
		return fmt.Errorf("audit verify: the log has %d problems in %d entries", len(rep.Problems), rep.Entries)
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries\n", rep.Entries)
	return nil
}

func runUsers(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create-staff" {
		return errors.New("users: want create-staff")
	}
	fs := newFlagSet("users create-staff", stderr, "users create-staff --email E --role admin|privacy|support|analyst --password-stdin [flags]")
	f := app.NewFlags(fs, false)
	email := fs.String("email", "", "the staff member's email")
	role := fs.String("role", "", "admin, privacy, support or analyst")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	if err := parse(fs, args[1:]); err != nil {
		return quiet(err)
	}
	if *email == "" || *role == "" || !*pwStdin {
		return errors.New("users create-staff: --email, --role and --password-stdin are required")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	a, err := openApp(ctx, f, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Identity.CreateStaff(ctx, *email, *role, password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "staff account ready with role %s\n", *role)
	return nil
}

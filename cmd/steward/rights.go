package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"steward/internal/app"
)

// runRights runs the rights subcommands: reapply, which erases again what
// the erasure ledger says was erased (run it after every restore of a
// backup), and coverage, which lists how every personal table is exported
// and erased.
func runRights(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "reapply" && args[0] != "coverage") {
		return errors.New("rights: want reapply or coverage")
	}
	sub := args[0]
	fs := newFlagSet("rights "+sub, stderr, "rights "+sub+" [flags]")
	f := app.NewFlags(fs, false)
	var ledgers []string
	if sub == "reapply" {
		fs.Func("ledger", "an erasure ledger file kept outside the backups (repeatable; the data directory's erasure-ledger.jsonl is always read)", func(v string) error {
			ledgers = append(ledgers, v)
			return nil
		})
	}
	if err := parse(fs, args[1:]); err != nil {
		return quiet(err)
	}
	a, err := openApp(ctx, f, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if sub == "coverage" {
		cov, err := a.Rights.Coverage(ctx)
		if err != nil {
			return err
		}
		for _, c := range cov {
			fmt.Fprintf(stdout, "%-28s dataset %-26s export %-9s erasure %s\n", c.Table, c.Dataset, c.Export, c.Erasure)
		}
		return nil
	}
	rep, err := a.Rights.Reapply(ctx, ledgers)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d ledger entries: %d erasures applied again (%d rows had come back), %d subjects unknown to this database\n",
		rep.Entries, rep.Applied, rep.RowsAgain, rep.Unknown)
	if len(rep.Problems) > 0 {
		fmt.Fprintln(stdout, strings.Join(rep.Problems, "\n"))
		return fmt.Errorf("rights reapply: %d entries could not be applied", len(rep.Problems))
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"steward/internal/app"
	"steward/internal/retention"
)

// runRetention runs the retention sweep now, or with --dry-run lists what
// it would remove, per category and table, with counts and the oldest row.
func runRetention(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New("retention: want run")
	}
	fs := newFlagSet("retention run", stderr, "retention run [--dry-run] [--json] [flags]")
	dry := fs.Bool("dry-run", false, "list what the sweep would remove; change nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	f := app.NewFlags(fs, false)
	if err := parse(fs, args[1:]); err != nil {
		return quiet(err)
	}
	a, err := openApp(ctx, f, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	var rep retention.Report
	if *dry {
		rep, err = a.Retention.Plan(ctx)
	} else {
		rep, err = a.Retention.Sweep(ctx)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printReport(stdout, rep)
	return nil
}

func printReport(w io.Writer, rep retention.Report) {
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CATEGORY\tTABLE\tRETENTION\tFROM\t%s\tADDED TO\tHELD\tOLDEST\tKEPT\n", verb)
	for _, l := range rep.Lines {
		oldest := "-"
		if l.Oldest != nil {
			oldest = l.Oldest.Format(time.DateOnly)
		}
		kept := l.Kept
		if kept == "" {
			kept = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", l.Category, l.Table, l.Rule, l.Event, l.Due, l.Added, l.Held, oldest, kept)
	}
	tw.Flush()
	fmt.Fprintf(w, "people known only by an address, with nothing else left: %d %s, %d held\n", rep.SubjectsDue, verb, rep.SubjectsHeld)
	fmt.Fprintf(w, "rows %s: %d", verb, rep.Removed())
	if !rep.DryRun {
		fmt.Fprintf(w, "; keys destroyed: %d; took %s", rep.KeysDestroyed, rep.Took.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
}

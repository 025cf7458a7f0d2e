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
	"steward/internal/rights"
)

// runRequests runs `steward requests list|show`: the staff queue of rights
// requests from the command line, ordered by due date, with overdue ones
// flagged. Showing one request reads personal data (the subject's
// explanation, corrections), so it is audited as a staff read.
func runRequests(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		return errors.New("requests: want list or show")
	}
	sub := args[0]
	fs := newFlagSet("requests "+sub, stderr, "requests list [--all] | requests show ID  [flags]")
	f := app.NewFlags(fs, false)
	all := fs.Bool("all", false, "list finished requests too")
	if err := parse(fs, args[1:]); err != nil {
		return quiet(err)
	}
	cfg, err := f.Config(getenv)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, getenv, newLogger(io.Discard), app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	now := a.Clock.Now()
	switch sub {
	case "list":
		reqs, err := a.Rights.Queue(ctx, rights.Operator(), *all, 1000)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tRECEIVED\tDUE\t")
		for _, r := range reqs {
			flag := ""
			if r.Overdue(now) {
				flag = "OVERDUE"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, r.Status, r.ReceivedAt.Format(time.DateOnly), r.DueAt.Format(time.DateOnly), flag)
		}
		return tw.Flush()
	default:
		if fs.NArg() != 1 {
			return errors.New("requests show: name one request id")
		}
		r, err := a.Rights.Review(ctx, rights.Operator(), fs.Arg(0))
		if err != nil {
			return err
		}
		out := map[string]any{
			"id": r.ID, "subject": r.SubjectID, "type": r.Type, "scope": r.Scope, "status": r.Status,
			"received_at": r.ReceivedAt, "due_at": r.DueAt, "overdue": r.Overdue(now),
			"extended_months": r.ExtendedMonths, "extension_reason": r.ExtensionReason,
			"reason": r.Reason, "corrections": r.Corrections, "refusal_reason": r.RefusalReason,
			"needs_review": r.NeedsReview, "phase": r.Phase, "progress": r.Progress, "result": r.Result,
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
}

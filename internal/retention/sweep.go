package retention

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"steward/internal/policy"
	"steward/internal/rights"
	"steward/internal/store"
)

// Plan is the dry run: what the next sweep would remove, per category and
// table, with counts and the oldest row; nothing is changed.
func (s *Service) Plan(ctx context.Context) (Report, error) {
	return s.run(ctx, true)
}

// Sweep removes what is past its time, in bounded batches with a pause
// between them, and records the counts per category in the audit log. A
// sweep stopped half-way (a crash, a cancelled context) leaves finished
// batches done and the rest for the next one: each batch removes only
// rows still past their time, so nothing is removed twice.
func (s *Service) Sweep(ctx context.Context) (Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	rep, err := s.run(ctx, false)
	rep.Took = time.Since(start)
	s.seconds.Observe(rep.Took.Seconds())
	// What a stopped sweep removed is recorded too, marked stopped.
	if rerr := s.record(context.WithoutCancel(ctx), rep, err != nil); rerr != nil && err == nil {
		err = rerr
	}
	return rep, err
}

// restAfter is the rest after worked of work.
func (s *Service) restAfter(worked time.Duration) time.Duration {
	return max(s.d.Pause, restPerWork*worked)
}

// restPerWork is how many times longer than its work a sweep rests (pause).
const restPerWork = 6

func (s *Service) run(ctx context.Context, dry bool) (Report, error) {
	if !dry {
		// Only a sweep rests (one at a time: s.mu); a dry run never does.
		s.worked.Store(time.Now().UnixNano())
	}
	now := s.d.Clock.Now()
	rep := Report{At: now, DryRun: dry, Lines: []Line{}}
	catHolds, err := s.categoryHolds(ctx, now)
	if err != nil {
		return rep, err
	}
	hist, err := s.history(ctx)
	if err != nil {
		return rep, err
	}
	hist = inForce(hist, now)
	// The rule in force is the newest version's that is in force: a
	// significant change applies once its announced date came.
	current := func(tg target) policy.Retention {
		if r, ok := Rule(hist[len(hist)-1].pol, tg.cat); ok && hist[len(hist)-1].pol != s.d.Policy {
			return r
		}
		return tg.rule
	}
	for _, tg := range s.targets() {
		tg.spans = spans(hist, tg.cat, current(tg))
		lines, err := s.sweepTarget(ctx, tg, now, dry, catHolds, &rep)
		rep.Lines = append(rep.Lines, lines...)
		if err != nil {
			return rep, err
		}
	}
	lines, err := s.sweepRollups(ctx, now, dry, hist, current, catHolds)
	rep.Lines = append(rep.Lines, lines...)
	if err != nil {
		return rep, err
	}
	if err := s.sweepSubjects(ctx, now, dry, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// categoryHolds returns the categories of everyone's data a hold in force
// keeps.
func (s *Service) categoryHolds(ctx context.Context, now time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT category FROM subject_holds WHERE subject_id IS NULL AND lifted_at IS NULL AND expires_at > $1`, now)
	if err != nil {
		return nil, fmt.Errorf("retention: holds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("retention: holds: %w", err)
		}
		out[c] = true
	}
	return out, rows.Err()
}

// query is a target's condition on its rows, aliased t.
type query struct {
	from    string // FROM clause
	expired string // the rows past their time
	held    string // of those, the rows a hold on their subject keeps
	oldest  string // the expression whose minimum is the oldest row
	args    []any
}

func (s *Service) query(tg target, now time.Time) (query, bool) {
	q := query{from: quoteIdent(tg.t.Name) + ` t`, held: "FALSE"}
	arg := func(v any) string {
		q.args = append(q.args, v)
		return "$" + strconv.Itoa(len(q.args))
	}
	switch tg.event {
	case "collected":
		// Rows collected under each version of the policy follow the
		// shortest rule since: a shortening reaches back, a lengthening
		// only reaches what is collected after it.
		col := `t.` + quoteIdent(tg.dated)
		var ors []string
		for _, sp := range tg.spans {
			cutoff, ok := sp.rule.Cutoff(now)
			if !ok {
				continue
			}
			if !sp.to.IsZero() && sp.to.Before(cutoff) {
				cutoff = sp.to
			}
			cond := col + ` < ` + arg(cutoff)
			if !sp.from.IsZero() {
				cond = `(` + col + ` >= ` + arg(sp.from) + ` AND ` + cond + `)`
			}
			ors = append(ors, cond)
		}
		if len(ors) == 0 {
			return q, false
		}
		q.expired = `(` + strings.Join(ors, ` OR `) + `)`
		q.oldest = col
	case "account-closed":
		q.from += ` JOIN subjects es ON es.id = t.` + quoteIdent(tg.t.SubjectColumn)
		q.expired = `es.erased_at IS NOT NULL AND es.erased_at < ` + arg(tg.rule.Period.SubtractFrom(now))
		q.oldest = `es.erased_at`
	default:
		return q, false
	}
	if tg.t.Personal() {
		subj := `t.` + quoteIdent(tg.t.SubjectColumn)
		at := arg(now)
		cats := append([]string{""}, tg.cats...)
		ph := make([]string, len(cats))
		for i, c := range cats {
			ph[i] = arg(c)
		}
		q.held = `(EXISTS (SELECT 1 FROM subject_holds h WHERE h.subject_id = ` + subj + ` AND h.lifted_at IS NULL AND h.expires_at > ` + at + `
			AND h.category IN (` + strings.Join(ph, ", ") + `)) OR EXISTS (SELECT 1 FROM subject_state ss WHERE ss.subject_id = ` + subj + ` AND ss.legal_hold = TRUE))`
	}
	return q, true
}

// sweepTarget removes (or counts) one target's rows past their time.
func (s *Service) sweepTarget(ctx context.Context, tg target, now time.Time, dry bool, catHolds map[string]bool, rep *Report) ([]Line, error) {
	line := Line{Category: tg.cat, Table: tg.t.Name, Rule: tg.rule.String(), Event: tg.event}
	withLines := make([]Line, len(tg.with))
	for i, w := range tg.with {
		withLines[i] = Line{Category: tg.cat, Table: w.Name, Rule: line.Rule, Event: "with " + tg.t.Name}
	}
	all := func() []Line { return append([]Line{line}, withLines...) }
	switch {
	case tg.rule.Kind == policy.RetainArchive:
		line.Kept = "archive"
		return []Line{line}, nil
	case catHolds[""] || anyHeld(tg.cats, catHolds):
		line.Kept = "legal-hold"
		for i := range withLines {
			withLines[i].Kept = line.Kept
		}
		return all(), nil
	}
	q, ok := s.query(tg, now)
	if !ok {
		return nil, nil
	}
	if c, ok := tg.rule.Cutoff(now); ok {
		line.Cutoff = &c
	} else if tg.event == "account-closed" {
		c := tg.rule.Period.SubtractFrom(now)
		line.Cutoff = &c
	}
	// What is due (the dry run; a sweep counts what it removes), and
	// what a hold keeps.
	if dry {
		err := s.d.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+q.from+` WHERE `+q.expired+` AND NOT `+q.held, q.args...).Scan(&line.Due)
		if err != nil {
			return all(), fmt.Errorf("retention: count %s: %w", tg.t.Name, err)
		}
	}
	if line.Due > 0 {
		// The column itself, not MIN(): SQLite types a bare column by
		// its declaration, so it scans as a time on both engines.
		var oldest sql.NullTime
		err := s.d.DB.QueryRowContext(ctx, `SELECT `+q.oldest+` FROM `+q.from+` WHERE `+q.expired+` AND NOT `+q.held+
			` ORDER BY `+q.oldest+` LIMIT 1`, q.args...).Scan(&oldest)
		if err != nil {
			return all(), fmt.Errorf("retention: oldest of %s: %w", tg.t.Name, err)
		}
		if oldest.Valid {
			t := oldest.Time.UTC()
			line.Oldest = &t
		}
	}
	if err := s.d.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+q.from+` WHERE `+q.expired+` AND `+q.held, q.args...).Scan(&line.Held); err != nil {
		return all(), fmt.Errorf("retention: count held %s: %w", tg.t.Name, err)
	}
	for i, w := range tg.with {
		count := func(not string, into *int64) error {
			return s.d.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(w.Name)+` WHERE `+quoteIdent(w.Dated.WithKey)+
				` IN (SELECT t.id FROM `+q.from+` WHERE `+q.expired+` AND `+not+q.held+`)`, q.args...).Scan(into)
		}
		if dry {
			if err := count("NOT ", &withLines[i].Due); err != nil {
				return all(), fmt.Errorf("retention: count %s: %w", w.Name, err)
			}
		}
		if err := count("", &withLines[i].Held); err != nil {
			return all(), fmt.Errorf("retention: count %s: %w", w.Name, err)
		}
	}
	if dry {
		return all(), nil
	}
	for i := range withLines {
		withLines[i].Due = 0
	}
	line.Due = 0
	var err2 error
	if h := s.d.Rights.HolderOf(tg.t.Name); h != nil {
		err2 = s.removeThroughHolder(ctx, tg, q, h, &line, withLines, rep)
	} else {
		err2 = s.removeRows(ctx, tg, q, &line, rep)
	}
	for i := range withLines {
		s.removed.WithLabelValues(tg.cat, withLines[i].Table).Add(float64(withLines[i].Due))
	}
	s.removed.WithLabelValues(tg.cat, tg.t.Name).Add(float64(line.Due))
	return all(), err2
}

func anyHeld(cats []string, held map[string]bool) bool {
	for _, c := range cats {
		if held[c] {
			return true
		}
	}
	return false
}

// pause rests between batches so the writer serves others.
//
// The rest is at least Pause and at least restPerWork times as long as the
// work since the last rest took, so however slow a batch is on a busy
// machine, the sweep works at most a seventh of the time and collection
// and sign-in keep the CPU and the writer (SQLite's only one above all).
// Measured beside collection under wrk (TestLoadCollectBesideSweep): a
// fixed 20 ms rest cost collection 27-30 % of its throughput on SQLite,
// three times the work 27 %, six times 6 % (BENCHMARKS.md).
func (s *Service) pause(ctx context.Context) error {
	if s.d.Pause <= 0 {
		return ctx.Err()
	}
	var worked time.Duration
	if since := s.worked.Load(); since != 0 {
		worked = time.Since(time.Unix(0, since))
	}
	rest := s.restAfter(worked)
	defer func() { s.worked.Store(time.Now().UnixNano()) }()
	t := time.NewTimer(rest)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rowRef is the engine's physical row id, for batched deletes of tables
// whose keys differ.
func (s *Service) rowRef() string {
	if s.d.DB.Engine == store.Postgres {
		return "ctid"
	}
	return "rowid"
}

// skipLocked ends a batch's select on PostgreSQL so that two processes
// sweeping at once take different rows instead of waiting on (or
// deadlocking over) the same ones; SQLite has one writer at a time.
func (s *Service) skipLocked() string {
	if s.d.DB.Engine == store.Postgres {
		return ` FOR UPDATE OF t SKIP LOCKED`
	}
	return ""
}

// removeRows deletes a target's rows past their time, a batch per
// transaction, and destroys a subject's category key once the sweep took
// the last of that category.
func (s *Service) removeRows(ctx context.Context, tg target, q query, line *Line, rep *Report) error {
	ref := s.rowRef()
	limit := fmt.Sprintf(" LIMIT %d", s.d.Batch)
	sel := `SELECT t.` + ref + ` FROM ` + q.from + ` WHERE ` + q.expired + ` AND NOT ` + q.held + limit + s.skipLocked()
	del := `DELETE FROM ` + quoteIdent(tg.t.Name) + ` WHERE ` + ref + ` IN (` + sel + `)`
	if ref == "ctid" {
		del = `DELETE FROM ` + quoteIdent(tg.t.Name) + ` WHERE ctid = ANY(ARRAY(` + sel + `))`
	}
	returning := tg.sealed && tg.t.Personal()
	if returning {
		del += ` RETURNING ` + quoteIdent(tg.t.SubjectColumn)
	}
	// The subjects the sweep took rows of: once the table is done, those
	// left with nothing of the category lose its key.
	touched := map[string]bool{}
	defer func() {
		if len(touched) > 0 {
			if err := s.shredEmptied(context.WithoutCancel(ctx), tg.cat, touched, rep); err != nil {
				s.d.Log.Error("retention: destroy emptied keys", "category", tg.cat, "error", err.Error())
			}
		}
	}()
	for {
		var n int64
		err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
			if !returning {
				res, err := tx.ExecContext(ctx, del, q.args...)
				if err != nil {
					return err
				}
				n, _ = res.RowsAffected()
				return nil
			}
			rows, err := tx.QueryContext(ctx, del, q.args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				touched[id] = true
				n++
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("retention: sweep %s: %w", tg.t.Name, err)
		}
		line.Due += n
		if n < int64(s.d.Batch) {
			return nil
		}
		if err := s.pause(ctx); err != nil {
			return err
		}
	}
}

// shredEmptied destroys the category key of each subject the sweep left
// with nothing of the category in any table: copies of what was sealed
// under it, in backups too, can no longer be opened. The key is made anew
// if the category is collected again. Each subject is checked and its key
// destroyed in one transaction.
func (s *Service) shredEmptied(ctx context.Context, cat string, subjects map[string]bool, rep *Report) error {
	var tables []string
	for _, t := range s.d.Registry.Personal() {
		for _, c := range t.Categories(s.d.Policy.CategoryOfField) {
			if c == cat {
				tables = append(tables, `SELECT 1 FROM `+quoteIdent(t.Name)+` WHERE `+quoteIdent(t.SubjectColumn)+` = $1`)
				break
			}
		}
	}
	left := `SELECT COUNT(*) FROM (` + strings.Join(tables, ` UNION ALL `) + ` LIMIT 1) x`
	ids := make([]string, 0, len(subjects))
	for id := range subjects {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), shredChunk)]
		ids = ids[len(chunk):]
		var destroyed int64
		err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
			destroyed = 0
			for _, id := range chunk {
				var n int
				if err := tx.QueryRowContext(ctx, left, id).Scan(&n); err != nil {
					return fmt.Errorf("shred check: %w", err)
				}
				if n > 0 {
					continue
				}
				gone, err := s.d.Door.Shred(ctx, tx, id, cat)
				if err != nil {
					return err
				}
				destroyed += int64(len(gone))
				if err := s.d.Door.Revive(ctx, tx, id, cat); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		rep.KeysDestroyed += destroyed
		if err := s.pause(ctx); err != nil {
			return err
		}
	}
	return nil
}

// shredChunk bounds the subjects whose keys one transaction checks.
const shredChunk = 100

// removeThroughHolder removes a target's rows past their time through the
// rights engine's holder of the table, so the rows that go with them and
// their files and item keys go too: the same code as an erasure of those
// items. A batch of rows is one transaction.
func (s *Service) removeThroughHolder(ctx context.Context, tg target, q query, h rights.Holder, line *Line, withLines []Line, rep *Report) error {
	sel := `SELECT t.id, t.` + quoteIdent(tg.t.SubjectColumn) + ` FROM ` + q.from + ` WHERE ` + q.expired + ` AND NOT ` + q.held +
		fmt.Sprintf(" ORDER BY t.id LIMIT %d", s.d.Batch) + s.skipLocked()
	touched := map[string]bool{}
	defer func() {
		if len(touched) > 0 && tg.sealed {
			if err := s.shredEmptied(context.WithoutCancel(ctx), tg.cat, touched, rep); err != nil {
				s.d.Log.Error("retention: destroy emptied keys", "category", tg.cat, "error", err.Error())
			}
		}
	}()
	for {
		bySubject := map[string][]string{}
		n := 0
		err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, sel, q.args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id, subj string
				if err := rows.Scan(&id, &subj); err != nil {
					rows.Close()
					return err
				}
				bySubject[subj] = append(bySubject[subj], tg.t.Dataset+"/"+id)
				touched[subj] = true
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			// Subjects in one order, so two sweeps never wait on each
			// other's rows the other way round.
			subjects := make([]string, 0, len(bySubject))
			for subj := range bySubject {
				subjects = append(subjects, subj)
			}
			sort.Strings(subjects)
			for _, subj := range subjects {
				sc := rights.Scope{Kind: policy.ScopeItem, Items: bySubject[subj]}
				for i, w := range tg.with {
					o, err := h.Erase(ctx, tx, w, []string{subj}, sc)
					if err != nil {
						return err
					}
					withLines[i].Due += o.Erased
				}
				o, err := h.Erase(ctx, tx, tg.t, []string{subj}, sc)
				if err != nil {
					return err
				}
				line.Due += o.Erased
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("retention: sweep %s: %w", tg.t.Name, err)
		}
		if n < s.d.Batch {
			return nil
		}
		if err := s.pause(ctx); err != nil {
			return err
		}
	}
}

// quoteIdent quotes a registry name for SQL (the names are the registry's
// own, never input).
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

package rights

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// LedgerEntry is one erasure as the pseudonymous ledger records it: the
// subject's id, the scope and the time, nothing that identifies anyone.
type LedgerEntry struct {
	ID        string    `json:"id"`
	SubjectID string    `json:"subject_id"`
	RequestID string    `json:"request_id"`
	Scope     Scope     `json:"scope"`
	ErasedAt  time.Time `json:"erased_at"`
}

func (s *Service) ledgerEntry(r Request, sc Scope) LedgerEntry {
	// The id derives from the request, so a retried job writes the same
	// entry again, which both the table and reapply treat as one.
	return LedgerEntry{ID: "er_" + strings.TrimPrefix(r.ID, "rq_"), SubjectID: r.SubjectID, RequestID: r.ID, Scope: sc, ErasedAt: s.clock.Now()}
}

// ledger records an erasure in the file and then the table.
func (s *Service) ledger(ctx context.Context, tx *sql.Tx, r Request, sc Scope) error {
	if err := s.ledgerFile(r, sc); err != nil {
		return err
	}
	return s.ledgerRow(ctx, tx, r, sc)
}

func (s *Service) ledgerRow(ctx context.Context, q store.Q, r Request, sc Scope) error {
	e := s.ledgerEntry(r, sc)
	params, err := json.Marshal(e.Scope)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO rights_erasures (id, subject_id, request_id, scope, params, erased_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`, e.ID, e.SubjectID, e.RequestID, string(sc.Kind), string(params), e.ErasedAt); err != nil {
		return fmt.Errorf("rights: record erasure: %w", err)
	}
	return nil
}

// ledgerFile appends the entry to the ledger file, synced to disk before
// the erasure is reported done: the file is what survives a restore.
func (s *Service) ledgerFile(r Request, sc Scope) error {
	if s.cfg.LedgerPath == "" {
		return nil
	}
	b, err := json.Marshal(s.ledgerEntry(r, sc))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.LedgerPath), 0o700); err != nil {
		return fmt.Errorf("rights: erasure ledger: %w", err)
	}
	f, err := os.OpenFile(s.cfg.LedgerPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("rights: erasure ledger: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("rights: erasure ledger: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("rights: erasure ledger: %w", err)
	}
	return f.Close()
}

// ReadLedgerFile reads a ledger file. A torn last line (a crash while
// appending) is skipped.
func ReadLedgerFile(path string) ([]LedgerEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rights: read ledger %s: %w", path, err)
	}
	defer f.Close()
	var out []LedgerEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var e LedgerEntry
		if err := json.Unmarshal([]byte(text), &e); err != nil || e.ID == "" || e.SubjectID == "" {
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("rights: read ledger %s: %w", path, err)
	}
	return out, nil
}

// Ledger returns the erasure ledger held in the database.
func (s *Service) Ledger(ctx context.Context) ([]LedgerEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, subject_id, request_id, params, erased_at FROM rights_erasures ORDER BY erased_at, id`)
	if err != nil {
		return nil, fmt.Errorf("rights: ledger: %w", err)
	}
	defer rows.Close()
	var out []LedgerEntry
	for rows.Next() {
		var e LedgerEntry
		var params string
		if err := rows.Scan(&e.ID, &e.SubjectID, &e.RequestID, &params, &e.ErasedAt); err != nil {
			return nil, fmt.Errorf("rights: ledger: %w", err)
		}
		if err := json.Unmarshal([]byte(params), &e.Scope); err != nil {
			return nil, fmt.Errorf("rights: ledger entry %s: %w", e.ID, err)
		}
		e.ErasedAt = e.ErasedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReapplyReport says what a reapply did.
type ReapplyReport struct {
	Entries   int      // ledger entries read (database and files, each once)
	Applied   int      // erasures run again
	Unknown   int      // subjects this database does not know (created after the backup)
	RowsAgain int64    // rows that had come back with the backup and were erased again
	Problems  []string // entries that could not be applied
}

// Reapply erases again, after a backup was restored, everything the
// ledger says was erased: the database's own ledger and the ledger files
// given (which, kept outside the backups, remember erasures made after the
// backup was taken). Data keys are destroyed again and rows deleted again;
// a legal hold restored with the backup is lifted, since the erasure it
// would block was already decided after it ended. Each entry is audited.
func (s *Service) Reapply(ctx context.Context, files []string) (ReapplyReport, error) {
	var rep ReapplyReport
	entries, err := s.Ledger(ctx)
	if err != nil {
		return rep, err
	}
	if s.cfg.LedgerPath != "" && !containsStr(files, s.cfg.LedgerPath) {
		if _, err := os.Stat(s.cfg.LedgerPath); err == nil {
			files = append(files, s.cfg.LedgerPath)
		}
	}
	for _, f := range files {
		more, err := ReadLedgerFile(f)
		if err != nil {
			return rep, err
		}
		entries = append(entries, more...)
	}
	seen := map[string]bool{}
	var list []LedgerEntry
	for _, e := range entries {
		if !seen[e.ID] {
			seen[e.ID] = true
			list = append(list, e)
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].ErasedAt.Before(list[j].ErasedAt) })
	rep.Entries = len(list)
	for _, e := range list {
		if _, err := s.subjects.Get(ctx, s.db, e.SubjectID); fault.CodeOf(err) == fault.NotFound {
			rep.Unknown++
			continue
		} else if err != nil {
			return rep, err
		}
		if on, _, err := s.subjects.LegalHold(ctx, s.db, e.SubjectID); err == nil && on {
			if err := s.subjects.SetLegalHold(ctx, s.db, e.SubjectID, false, ""); err != nil && fault.CodeOf(err) != fault.Conflict {
				return rep, err
			}
		}
		sc := e.Scope
		if sc.Kind == "" {
			sc.Kind = policy.ScopeAccount
		}
		if sc.Kind == policy.ScopeItem {
			// Items the restored database does not have are simply gone.
			if schema, err := s.loadedSchema(ctx); err == nil {
				if _, err := s.parseItems(schema, sc.Items); err != nil {
					rep.Problems = append(rep.Problems, e.ID+": "+err.Error())
					continue
				}
			}
		}
		out, err := s.erase(ctx, e.SubjectID, sc, 0, true)
		if err != nil {
			var hold *errLegalHold
			if errors.As(err, &hold) {
				rep.Problems = append(rep.Problems, e.ID+": legal hold")
				continue
			}
			rep.Problems = append(rep.Problems, e.ID+": "+err.Error())
			continue
		}
		rep.Applied++
		var n int64
		for _, t := range out.Erased {
			n += t.Erased
		}
		rep.RowsAgain += n
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.ledgerRow(ctx, tx, Request{ID: e.RequestID, SubjectID: e.SubjectID}, sc); err != nil {
				return err
			}
			return s.audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "rights.erasure_reapplied", Subject: e.SubjectID,
				Detail: map[string]string{"entry": e.ID, "request": e.RequestID, "scope": string(sc.Kind), "rows": fmt.Sprint(n)}})
		}); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

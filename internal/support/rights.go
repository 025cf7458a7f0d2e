package support

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"steward/internal/blob"
	"steward/internal/door"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
)

// Holder erases and exports the package's tables for the rights engine
// (the app registers it for every personal table of Tables): a request's
// rows, its key and its files go together.
type Holder struct{ s *Service }

// Holder returns the service's holder.
func (s *Service) Holder() *Holder { return &Holder{s: s} }

// Scope is what an erasure covers, as the rights engine says it.
type Scope struct {
	Kind       policy.ErasureScope
	Fields     []string
	Categories []string
	// Items are "support_requests/ID", as the access report names them.
	Items []string
}

// Outcome says what an erasure did to one table.
type Outcome struct {
	Dataset string
	Erased  int64
}

// StoredFile is one of a subject's files, for the portability ZIP.
type StoredFile struct {
	Name    string
	ModTime time.Time
	Open    func() (io.ReadCloser, error)
}

// covers reports whether a category scope names a field (or its category).
func (h *Holder) covers(sc Scope, field string) bool {
	cat := h.s.category(field)
	return slices.Contains(sc.Fields, field) || (cat != "" && slices.Contains(sc.Categories, cat))
}

// coverage is what an erasure scope covers of the package's rows.
type coverage struct {
	all        bool     // every row of the subjects
	requests   []string // the rows of these requests (an item scope)
	recordings bool     // only the recordings of the subjects' calls
}

// coverage reads a scope. It depends on the scope alone, never on rows
// another table's step may already have erased: the engine runs the
// tables one after the other, each in its own transaction.
func (h *Holder) coverage(sc Scope) coverage {
	switch sc.Kind {
	case policy.ScopeAccount:
		return coverage{all: true}
	case policy.ScopeCategory:
		if h.covers(sc, FieldRequest) || h.covers(sc, FieldMessage) {
			return coverage{all: true}
		}
		return coverage{recordings: h.covers(sc, FieldRecording)}
	case policy.ScopeItem:
		var ids []string
		for _, it := range sc.Items {
			if id, ok := strings.CutPrefix(it, "support_requests/"); ok {
				ids = append(ids, id)
			}
		}
		return coverage{requests: ids}
	}
	return coverage{}
}

// rowsIn is the condition on a table's rows of the subjects a coverage
// takes; ok is false when it takes none.
func rowsIn(table string, subjects []string, c coverage) (where string, args []any, ok bool) {
	where, args = `subject_id IN (`+store.Placeholders(len(subjects), 1)+`)`, store.Args(subjects)
	switch {
	case c.all:
		return where, args, true
	case len(c.requests) > 0:
		col := "request_id"
		if table == "support_requests" {
			col = "id"
		}
		return where + ` AND ` + col + ` IN (` + store.Placeholders(len(c.requests), len(subjects)+1) + `)`, append(args, store.Args(c.requests)...), true
	case c.recordings && table == "support_files":
		return where + ` AND kind = 'recording'`, args, true
	}
	return "", nil, false
}

// Erase erases what the scope covers in one table, in tx: rows, and for
// requests their keys, for files their blobs.
func (h *Holder) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, subjects []string, sc Scope) (Outcome, error) {
	out := Outcome{Dataset: t.Dataset}
	where, args, ok := rowsIn(t.Name, subjects, h.coverage(sc))
	if !ok {
		return out, nil
	}
	switch t.Name {
	case "support_requests":
		rows, err := tx.QueryContext(ctx, `SELECT id, subject_id FROM support_requests WHERE `+where, args...)
		if err != nil {
			return out, err
		}
		type req struct{ id, subject string }
		var rs []req
		for rows.Next() {
			var r req
			if err := rows.Scan(&r.id, &r.subject); err != nil {
				rows.Close()
				return out, err
			}
			rs = append(rs, r)
		}
		rows.Close()
		for _, r := range rs {
			if err := h.s.shred(ctx, tx, r.subject, r.id); err != nil {
				return out, err
			}
		}
	case "support_files":
		fs, err := h.s.filesOf(ctx, tx, where, args...)
		if err != nil {
			return out, err
		}
		for _, f := range fs {
			if blob.CheckKey(f.blob) != nil {
				continue // a key no store can hold names no file to delete
			}
			if err := h.s.d.Blobs.Delete(ctx, f.blob); err != nil {
				return out, fmt.Errorf("support: erase a file: %w", err)
			}
		}
	case "support_messages":
	default:
		return out, fmt.Errorf("support: no holder for %s", t.Name)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM `+t.Name+` WHERE `+where, args...)
	if err != nil {
		return out, fmt.Errorf("support: erase %s: %w", t.Name, err)
	}
	out.Erased, _ = res.RowsAffected()
	return out, nil
}

// shred destroys a request's keys: every value and file sealed under them,
// in every copy, can never be opened again.
func (s *Service) shred(ctx context.Context, q store.Q, subjectID, requestID string) error {
	done := map[string]bool{}
	for _, f := range []string{FieldRequest, FieldMessage, FieldRecording} {
		cat := s.category(f)
		if cat == "" || done[cat] {
			continue
		}
		done[cat] = true
		if err := s.d.Door.ShredItem(ctx, q, subjectID, cat, requestID); err != nil {
			return fmt.Errorf("support: shred a request: %w", err)
		}
	}
	return nil
}

// Left counts what the scope should have erased from a table and is still
// there.
func (h *Holder) Left(ctx context.Context, q store.Q, t registry.Table, subjects []string, sc Scope) (int, error) {
	where, args, ok := rowsIn(t.Name, subjects, h.coverage(sc))
	if !ok {
		return 0, nil
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.Name+` WHERE `+where, args...).Scan(&n)
	return n, err
}

// Export returns a table's rows of the subjects, their sealed values opened
// for the subject's own request.
func (h *Holder) Export(ctx context.Context, q store.Q, t registry.Table, subjects []string) ([]map[string]any, error) {
	var out []map[string]any
	for _, id := range subjects {
		v, err := h.s.d.Door.Subject(ctx, q, door.Subject(), id)
		if err != nil {
			return nil, err
		}
		switch t.Name {
		case "support_requests":
			rows, err := q.QueryContext(ctx, `SELECT `+requestCols+` FROM support_requests WHERE subject_id = $1 ORDER BY created_at, id`, id)
			if err != nil {
				return nil, err
			}
			rs, err := scanRequests(rows)
			if err != nil {
				return nil, err
			}
			for _, r := range rs {
				m := map[string]any{"id": r.id, "subject_id": r.subject, "title_sealed": h.s.openTitle(ctx, v, h.s.category(FieldRequest), r),
					"channel": r.channel, "status": r.status, "created_at": r.created, "updated_at": r.updated}
				if r.closed.Valid {
					m["closed_at"] = r.closed.Time
				}
				out = append(out, m)
			}
		case "support_messages":
			rows, err := q.QueryContext(ctx, `SELECT id, request_id, direction, channel, body_sealed, spf, dkim, dmarc, created_at
FROM support_messages WHERE subject_id = $1 ORDER BY created_at, id`, id)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var msgID, req, dir, channel, spf, dkim, dmarc string
				var body []byte
				var at time.Time
				if err := rows.Scan(&msgID, &req, &dir, &channel, &body, &spf, &dkim, &dmarc, &at); err != nil {
					rows.Close()
					return nil, err
				}
				m := map[string]any{"id": msgID, "request_id": req, "subject_id": id, "direction": dir, "channel": channel,
					"spf": spf, "dkim": dkim, "dmarc": dmarc, "created_at": at}
				if b, err := v.OpenItem(ctx, h.s.category(FieldMessage), req, body); err == nil {
					m["body_sealed"] = string(b)
				}
				out = append(out, m)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		case "support_files":
			fs, err := h.s.filesOf(ctx, q, `subject_id = $1`, id)
			if err != nil {
				return nil, err
			}
			for _, f := range fs {
				m := map[string]any{"id": f.id, "request_id": f.request, "message_id": f.message, "subject_id": f.subject,
					"kind": f.kind, "mime": f.mime, "size": f.size, "created_at": f.created}
				if !f.notice.IsZero() {
					m["notice_given_at"] = f.notice
				}
				if pub, err := h.s.openFile(ctx, v, f); err == nil {
					m["name_sealed"] = pub.Name
				}
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// Files lists the subject's attachments and recordings, opened for their
// own request, for the portability ZIP.
func (h *Holder) Files(ctx context.Context, subjectID string) ([]StoredFile, error) {
	fs, err := h.s.filesOf(ctx, h.s.d.DB, `subject_id = $1`, subjectID)
	if err != nil {
		return nil, err
	}
	v, err := h.s.d.Door.Subject(ctx, h.s.d.DB, door.Subject(), subjectID)
	if err != nil {
		return nil, err
	}
	var out []StoredFile
	for _, f := range fs {
		pub, err := h.s.openFile(ctx, v, f)
		if err != nil {
			h.s.d.Log.Warn("support: a file could not be opened for an export", "file", f.id, "err", err)
			continue
		}
		f := f
		out = append(out, StoredFile{Name: "support-" + f.id + "-" + pub.Name, ModTime: f.created, Open: func() (io.ReadCloser, error) {
			rc, _, err := h.s.open(context.WithoutCancel(ctx), v, f)
			return rc, err
		}})
	}
	return out, nil
}

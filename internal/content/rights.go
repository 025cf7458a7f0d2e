package content

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"steward/internal/door"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
)

// Holder erases and exports the package's tables for the rights engine
// (the app hands it over as the engine's holder, exporter and file source
// for every table of Tables): rows, their item keys and their blobs go
// together, and the engine's verification lists the blob storage too.
type Holder struct{ s *Service }

// Scope is what an erasure covers, as the rights engine says it.
type Scope struct {
	Kind       policy.ErasureScope
	Fields     []string
	Categories []string
	// Items are "posts/ID" and "uploads/ID", as the access report names them.
	Items    []string
	UnderAge bool
}

// Outcome says what an erasure did to one table.
type Outcome struct {
	Dataset          string
	Erased, Kept     int64
	Why, Explanation string
}

// StoredFile is one of a subject's uploads, for the portability ZIP.
type StoredFile struct {
	Name    string
	ModTime time.Time
	Open    func() (io.ReadCloser, error)
}

// Holder returns the service's holder, to register with the rights engine
// for every table of Tables.
func (s *Service) Holder() *Holder { return &Holder{s: s} }

// inScope lists the items of subjects an erasure covers, and those it
// keeps for the archive.
func (h *Holder) inScope(ctx context.Context, q store.Q, subjects []string, sc Scope) (erase, keep []itemRow, err error) {
	rows, err := q.QueryContext(ctx, `SELECT `+itemCols+` FROM content_items WHERE subject_id IN (`+store.Placeholders(len(subjects), 1)+`) ORDER BY id`,
		store.Args(subjects)...)
	if err != nil {
		return nil, nil, err
	}
	all, err := scanItems(rows)
	if err != nil {
		return nil, nil, err
	}
	files, err := h.fileItems(ctx, q, subjects, sc)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range all {
		cat, _ := h.s.categoryOf(r.kind)
		covered := false
		switch sc.Kind {
		case policy.ScopeAccount, policy.ScopeContent:
			covered = true
		case policy.ScopeCategory:
			covered = slices.Contains(sc.Fields, r.kind) || slices.Contains(sc.Categories, cat)
		case policy.ScopeItem:
			covered = slices.Contains(sc.Items, "posts/"+r.id)
		}
		if !covered {
			continue
		}
		if h.s.archived(cat) && !sc.UnderAge {
			keep = append(keep, r)
			continue
		}
		erase = append(erase, r)
		delete(files, r.id)
	}
	return erase, keep, nil
}

// fileItems lists, by item, the files an item scope names on their own
// ("uploads/ID").
func (h *Holder) fileItems(ctx context.Context, q store.Q, subjects []string, sc Scope) (map[string][]string, error) {
	out := map[string][]string{}
	if sc.Kind != policy.ScopeItem {
		return out, nil
	}
	for _, ref := range sc.Items {
		if id, ok := strings.CutPrefix(ref, "uploads/"); ok {
			var item string
			err := q.QueryRowContext(ctx, `SELECT item_id FROM content_files WHERE id = $1 AND subject_id IN (`+store.Placeholders(len(subjects), 2)+`)`,
				append([]any{id}, store.Args(subjects)...)...).Scan(&item)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[item] = append(out[item], id)
		}
	}
	return out, nil
}

// Erase erases what the scope covers in one table of the package, in tx.
func (h *Holder) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, subjects []string, sc Scope) (Outcome, error) {
	out := Outcome{Dataset: t.Dataset}
	switch t.Name {
	case "content_items":
		erase, keep, err := h.inScope(ctx, tx, subjects, sc)
		if err != nil {
			return out, err
		}
		blobs, err := h.s.eraseItems(ctx, tx, erase)
		if err != nil {
			return out, err
		}
		out.Erased = int64(len(erase))
		if len(keep) > 0 {
			out.Kept, out.Why, out.Explanation = int64(len(keep)), string(policy.ExemptArchive), archiveWhy
		}
		return out, h.s.deleteBlobs(ctx, blobs)
	case "content_files":
		// Files go with their items; an item scope may name one alone; the
		// scope may cover files of their own (filesInScope).
		files, err := h.fileItems(ctx, tx, subjects, sc)
		if err != nil {
			return out, err
		}
		rest, err := h.filesInScope(ctx, tx, subjects, sc)
		if err != nil {
			return out, err
		}
		if len(rest) > 0 {
			files[""] = append(files[""], rest...)
		}
		var blobs []string
		done := map[string]bool{}
		for _, ids := range files {
			for _, id := range ids {
				if done[id] {
					continue
				}
				done[id] = true
				f := fileRow{id: id}
				err := tx.QueryRowContext(ctx, `SELECT subject_id, kind, blob, thumb FROM content_files WHERE id = $1`, id).Scan(&f.subject, &f.kind, &f.blob, &f.thumb)
				if err != nil {
					return out, err
				}
				if err := h.s.shredFile(ctx, tx, f); err != nil {
					return out, err
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM content_files WHERE id = $1`, id); err != nil {
					return out, err
				}
				blobs = append(blobs, f.blob, f.thumb)
				out.Erased++
			}
		}
		return out, h.s.deleteBlobs(ctx, slices.DeleteFunc(blobs, func(k string) bool { return k == "" }))
	case "content_settings":
		if sc.Kind == policy.ScopeAccount {
			res, err := tx.ExecContext(ctx, `DELETE FROM content_settings WHERE subject_id IN (`+store.Placeholders(len(subjects), 1)+`)`, store.Args(subjects)...)
			if err != nil {
				return out, err
			}
			out.Erased, _ = res.RowsAffected()
		}
		return out, nil
	case "content_actions":
		// Decisions go with their items (eraseItems); on an account erasure
		// any left of items already gone go too.
		if sc.Kind == policy.ScopeAccount {
			res, err := tx.ExecContext(ctx, `DELETE FROM content_actions WHERE subject_id IN (`+store.Placeholders(len(subjects), 1)+`)
AND item_id NOT IN (SELECT id FROM content_items)`, store.Args(subjects)...)
			if err != nil {
				return out, err
			}
			out.Erased, _ = res.RowsAffected()
		}
		return out, nil
	}
	return out, fmt.Errorf("content: no holder for %s", t.Name)
}

// Left counts what the scope should have erased and is still there: rows the scope covers that are still
// there and, for the whole content of a subject, any blob left in storage
// under the subject that no kept row names.
func (h *Holder) Left(ctx context.Context, q store.Q, t registry.Table, subjects []string, sc Scope) (int, error) {
	switch t.Name {
	case "content_items":
		erase, _, err := h.inScope(ctx, q, subjects, sc)
		if err != nil {
			return 0, err
		}
		n := len(erase)
		if sc.Kind == policy.ScopeAccount || sc.Kind == policy.ScopeContent {
			stray, err := h.strayBlobs(ctx, q, subjects)
			if err != nil {
				return 0, err
			}
			n += len(stray)
		}
		return n, nil
	case "content_settings":
		if sc.Kind != policy.ScopeAccount {
			return 0, nil
		}
		var n int
		err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM content_settings WHERE subject_id IN (`+store.Placeholders(len(subjects), 1)+`)`, store.Args(subjects)...).Scan(&n)
		return n, err
	case "content_files":
		files, err := h.fileItems(ctx, q, subjects, sc)
		if err != nil {
			return 0, err
		}
		rest, err := h.filesInScope(ctx, q, subjects, sc)
		if err != nil {
			return 0, err
		}
		n := 0
		files[""] = append(files[""], rest...)
		seen := map[string]bool{}
		for _, ids := range files {
			for _, id := range ids {
				if !seen[id] {
					seen[id] = true
					n++
				}
			}
		}
		return n, nil
	}
	return 0, nil
}

// filesInScope lists the files of subjects a scope covers on their own:
// on an account erasure every one; on a content erasure every photo and
// video (those of erased items went with them; any left lost their item
// while they uploaded); on a category erasure those of the fields or
// categories it names. The files of items kept for the archive stay.
func (h *Holder) filesInScope(ctx context.Context, q store.Q, subjects []string, sc Scope) ([]string, error) {
	var kinds []string
	for _, k := range []string{FilePhoto, FileVideo, FilePicture} {
		cat, _ := h.s.categoryOf(k)
		switch {
		case sc.Kind == policy.ScopeAccount:
		case sc.Kind == policy.ScopeContent && k != FilePicture:
		case sc.Kind == policy.ScopeCategory && (slices.Contains(sc.Fields, k) || (cat != "" && slices.Contains(sc.Categories, cat))):
		default:
			continue
		}
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return nil, nil
	}
	query := `SELECT id FROM content_files WHERE kind IN (` + store.Placeholders(len(kinds), 1) + `) AND subject_id IN (` +
		store.Placeholders(len(subjects), len(kinds)+1) + `)`
	if sc.Kind != policy.ScopeCategory {
		// The files of items kept for the archive stay with them.
		query += ` AND NOT EXISTS (SELECT 1 FROM content_items i WHERE i.id = content_files.item_id)`
	}
	rows, err := q.QueryContext(ctx, query, append(store.Args(kinds), store.Args(subjects)...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// strayBlobs lists the blobs stored under subjects that no file row names.
func (h *Holder) strayBlobs(ctx context.Context, q store.Q, subjects []string) ([]string, error) {
	var out []string
	for _, id := range subjects {
		keys, err := h.s.d.Blobs.List(ctx, "content/"+strings.ToLower(id)+"/")
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM content_files WHERE blob = $1 OR thumb = $1`, k).Scan(&n); err != nil {
				return nil, err
			}
			if n == 0 {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

// Export returns a table's rows of the subjects: the rows with their sealed values
// opened for the subject's own request.
func (h *Holder) Export(ctx context.Context, q store.Q, t registry.Table, subjects []string) ([]map[string]any, error) {
	var out []map[string]any
	for _, id := range subjects {
		v, err := h.s.d.Door.Subject(ctx, q, door.Subject(), id)
		if err != nil {
			return nil, err
		}
		switch t.Name {
		case "content_items":
			rows, err := q.QueryContext(ctx, `SELECT `+itemCols+`, policy_version FROM content_items WHERE subject_id = $1 ORDER BY created_at, id`, id)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var r itemRow
				var version int64
				if err := rows.Scan(&r.id, &r.subject, &r.kind, &r.site, &r.thread, &r.parent, &r.body, &r.visibility, &r.status,
					&r.created, &r.edited, &r.guestName, &version); err != nil {
					rows.Close()
					return nil, err
				}
				m := map[string]any{"id": r.id, "subject_id": r.subject, "kind": r.kind, "site": r.site, "thread": r.thread,
					"parent_id": r.parent, "visibility": r.visibility, "status": r.status, "policy_version": version, "created_at": r.created}
				if r.edited.Valid {
					m["edited_at"] = r.edited.Time
				}
				if cat, err := h.s.categoryOf(r.kind); err == nil {
					if body, err := v.OpenItem(ctx, cat, r.id, r.body); err == nil {
						m["body_sealed"] = string(body)
					}
					if r.guestName != nil {
						if name, err := v.OpenItem(ctx, cat, r.id, r.guestName); err == nil {
							m["author_name_sealed"] = string(name)
						}
					}
				}
				out = append(out, m)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		case "content_files":
			rows, err := q.QueryContext(ctx, `SELECT `+fileCols+` FROM content_files WHERE subject_id = $1 ORDER BY created_at, id`, id)
			if err != nil {
				return nil, err
			}
			fs, err := scanFiles(rows)
			if err != nil {
				return nil, err
			}
			for _, f := range fs {
				m := map[string]any{"id": f.id, "item_id": f.item, "subject_id": f.subject, "kind": f.kind, "mime": f.mime,
					"size": f.size, "width": int64(f.width), "height": int64(f.height), "created_at": f.created}
				if cat, err := h.s.categoryOf(f.kind); err == nil {
					if name, err := v.OpenItem(ctx, cat, f.id, f.name); err == nil {
						m["name_sealed"] = string(name)
					}
				}
				out = append(out, m)
			}
		case "content_settings":
			var vis string
			var at time.Time
			err := q.QueryRowContext(ctx, `SELECT default_visibility, updated_at FROM content_settings WHERE subject_id = $1`, id).Scan(&vis, &at)
			if err == nil {
				out = append(out, map[string]any{"subject_id": id, "default_visibility": vis, "updated_at": at})
			} else if !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
		case "content_actions":
			rows, err := q.QueryContext(ctx, `SELECT a.id, a.item_id, a.action, a.reason, a.note_sealed, a.created_at, COALESCE(i.kind, '')
FROM content_actions a LEFT JOIN content_items i ON i.id = a.item_id WHERE a.subject_id = $1 ORDER BY a.created_at, a.id`, id)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var actionID, item, action, reason, kind string
				var note []byte
				var at time.Time
				if err := rows.Scan(&actionID, &item, &action, &reason, &note, &at, &kind); err != nil {
					rows.Close()
					return nil, err
				}
				m := map[string]any{"id": actionID, "item_id": item, "subject_id": id, "action": action,
					"reason": reason, "created_at": at}
				if cat, err := h.s.categoryOf(kind); err == nil && note != nil {
					if b, err := v.OpenItem(ctx, cat, item, note); err == nil {
						m["note_sealed"] = string(b)
					}
				}
				out = append(out, m)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Files lists the subject's uploads, opened for
// their own request, for the portability ZIP.
func (h *Holder) Files(ctx context.Context, subjectID string) ([]StoredFile, error) {
	rows, err := h.s.d.DB.QueryContext(ctx, `SELECT `+fileCols+` FROM content_files WHERE subject_id = $1 ORDER BY created_at, id`, subjectID)
	if err != nil {
		return nil, err
	}
	fs, err := scanFiles(rows)
	if err != nil {
		return nil, err
	}
	v, err := h.s.d.Door.Subject(ctx, h.s.d.DB, door.Subject(), subjectID)
	if err != nil {
		return nil, err
	}
	var out []StoredFile
	for _, f := range fs {
		name := f.id
		if cat, err := h.s.categoryOf(f.kind); err == nil {
			if n, err := v.OpenItem(ctx, cat, f.id, f.name); err == nil {
				name = f.id + "-" + string(n)
			}
		}
		id := f.id
		// A file whose blob or key is gone cannot be handed over: it is
		// left out of the ZIP (its row still shows in the report).
		if rc, _, err := h.s.OpenFile(ctx, subjectID, id, false); err != nil {
			h.s.d.Log.Warn("content: an upload could not be opened for an export", "file", id, "err", err)
			continue
		} else {
			rc.Close()
		}
		out = append(out, StoredFile{Name: name, ModTime: f.created, Open: func() (io.ReadCloser, error) {
			rc, _, err := h.s.OpenFile(context.WithoutCancel(ctx), subjectID, id, false)
			return rc, err
		}})
	}
	return out, nil
}

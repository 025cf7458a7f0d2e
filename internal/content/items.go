package content

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"steward/internal/audit"
	"steward/internal/blob"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// Item is a comment or post as its reader may see it.
type Item struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Site       string    `json:"site"`
	Thread     string    `json:"thread"`
	ParentID   string    `json:"parent_id,omitempty"`
	Body       string    `json:"body"`
	Visibility string    `json:"visibility"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	EditedAt   time.Time `json:"edited_at,omitzero"`
	Files      []File    `json:"files,omitempty"`
	// Archived says the item is kept for the archive whatever its author
	// asks (the policy's retention for its category): it cannot be
	// deleted, and Why says so.
	Archived bool   `json:"archived,omitempty"`
	Why      string `json:"why,omitempty"`
}

// PublicItem is an item of a public thread: its text and files, and of its
// author the display name alone (M11).
type PublicItem struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	Author   string `json:"author"`
	// Picture is the id of the author's profile picture (a file), when
	// they have one the service may show.
	Picture   string    `json:"picture,omitempty"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	Files     []File    `json:"files,omitempty"`
}

// Draft is a new item.
type Draft struct {
	Kind       string `json:"kind"`
	Site       string `json:"site"`
	Thread     string `json:"thread"`
	ParentID   string `json:"parent_id"`
	Body       string `json:"body"`
	Visibility string `json:"visibility"`
}

// authorUse is the use of an author posting and editing: the service the
// policy runs for them.
func authorUse() door.Use { return door.Use{Purpose: PurposeService, Actor: door.ActorSubject} }

// publicUse is the use of showing items to the public.
func publicUse() door.Use { return door.System(PurposeService) }

// categoryOf is the category of a kind of item or file under the policy,
// refused when the policy declares no such field.
func (s *Service) categoryOf(kind string) (string, error) {
	c, err := s.d.Door.CategoryOf(kind)
	if err != nil {
		return "", fault.New(fault.Invalid, "this site does not take a %s (the privacy policy declares none)", kind)
	}
	return c, nil
}

// archived reports whether the policy keeps a category for the archive.
func (s *Service) archived(category string) bool {
	r, ok := s.d.Policy.Policy.Retention(category)
	return ok && r.Kind == policy.RetainArchive
}

// cleanText checks an item's text: valid UTF-8, not empty, bounded. It is
// stored as typed and escaped wherever it is shown.
func (s *Service) cleanText(field, text string) (string, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	switch {
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		return "", fault.FieldError(field, "must be text")
	case text == "":
		return "", fault.FieldError(field, "must not be empty")
	case len(text) > s.lim.MaxText:
		return "", fault.FieldError(field, "must be at most %d bytes", s.lim.MaxText)
	}
	return text, nil
}

// cleanThread checks a thread key: the path of one of the site's pages.
func cleanThread(thread string) (string, error) {
	if thread == "" || len(thread) > 512 || thread[0] != '/' || !utf8.ValidString(thread) ||
		strings.ContainsAny(thread, "\x00?#") || strings.ContainsFunc(thread, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fault.FieldError("thread", "must be the path of a page of the site (starting with /, no query)")
	}
	return thread, nil
}

// Post stores a new item of the author, sealed under its own key.
func (s *Service) Post(ctx context.Context, authorID string, d Draft) (Item, error) {
	if d.Kind != KindComment && d.Kind != KindPost {
		return Item{}, fault.FieldError("kind", "must be comment or post")
	}
	cat, err := s.categoryOf(d.Kind)
	if err != nil {
		return Item{}, err
	}
	if s.d.Policy.Policy.Site(d.Site) == nil {
		return Item{}, fault.FieldError("site", "unknown site")
	}
	if d.Thread, err = cleanThread(d.Thread); err != nil {
		return Item{}, err
	}
	if d.Body, err = s.cleanText("body", d.Body); err != nil {
		return Item{}, err
	}
	switch d.Visibility {
	case "":
		if d.Visibility, err = s.DefaultVisibility(ctx, authorID); err != nil {
			return Item{}, err
		}
	case Public, Private:
	default:
		return Item{}, fault.FieldError("visibility", "must be public or private")
	}
	it := Item{ID: store.NewID("i_"), Kind: d.Kind, Site: d.Site, Thread: d.Thread, ParentID: d.ParentID, Body: d.Body,
		Visibility: d.Visibility, Status: StatusVisible, CreatedAt: s.now()}
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if d.ParentID != "" {
			var site, thread string
			err := tx.QueryRowContext(ctx, `SELECT site, thread FROM content_items WHERE id = $1`, d.ParentID).Scan(&site, &thread)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && (site != d.Site || thread != d.Thread)) {
				return fault.FieldError("parent_id", "no such item in this thread")
			}
			if err != nil {
				return err
			}
		}
		v, err := s.d.Door.Subject(ctx, tx, authorUse(), authorID)
		if err != nil {
			return err
		}
		body, err := v.SealItem(ctx, cat, it.ID, []byte(it.Body))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO content_items (id, subject_id, kind, site, thread, parent_id, body_sealed, visibility, status, policy_version, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, it.ID, v.ID(), it.Kind, it.Site, it.Thread, it.ParentID, body, it.Visibility,
			it.Status, s.d.Policy.Number(), it.CreatedAt)
		return err
	})
	if err != nil {
		return Item{}, fmt.Errorf("content: post: %w", err)
	}
	return it, nil
}

// itemRow is an item as stored.
type itemRow struct {
	id, subject, kind, site, thread, parent, visibility, status string
	body, guestName                                             []byte
	created                                                     time.Time
	edited                                                      sql.NullTime
}

const itemCols = `id, subject_id, kind, site, thread, parent_id, body_sealed, visibility, status, created_at, edited_at, author_name_sealed`

func scanItems(rows *sql.Rows) ([]itemRow, error) {
	defer rows.Close()
	var out []itemRow
	for rows.Next() {
		var r itemRow
		if err := rows.Scan(&r.id, &r.subject, &r.kind, &r.site, &r.thread, &r.parent, &r.body, &r.visibility, &r.status,
			&r.created, &r.edited, &r.guestName); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// open opens an item's text with v (the author's view for some use).
func (s *Service) open(ctx context.Context, v *door.View, r itemRow) (Item, error) {
	cat, err := s.categoryOf(r.kind)
	if err != nil {
		return Item{}, err
	}
	body, err := v.OpenItem(ctx, cat, r.id, r.body)
	if err != nil {
		return Item{}, err
	}
	it := Item{ID: r.id, Kind: r.kind, Site: r.site, Thread: r.thread, ParentID: r.parent, Body: string(body),
		Visibility: r.visibility, Status: r.status, CreatedAt: r.created.UTC()}
	if r.edited.Valid {
		it.EditedAt = r.edited.Time.UTC()
	}
	if s.archived(cat) {
		it.Archived, it.Why = true, archiveWhy
	}
	return it, nil
}

const archiveWhy = "The privacy policy keeps this kind of work for the archive (the published record): it stays, though you may ask for your other data to be erased."

// owned reads one item of the author, for an action of theirs.
func (s *Service) owned(ctx context.Context, q store.Q, authorID, itemID string) (itemRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+itemCols+` FROM content_items WHERE id = $1 AND subject_id = $2`, itemID, authorID)
	if err != nil {
		return itemRow{}, err
	}
	rs, err := scanItems(rows)
	if err != nil {
		return itemRow{}, err
	}
	if len(rs) == 0 {
		return itemRow{}, fault.New(fault.NotFound, "no such item")
	}
	return rs[0], nil
}

// changeable reads one item of the author that they may change or delete,
// with its category: not one the policy keeps for the archive.
func (s *Service) changeable(ctx context.Context, q store.Q, authorID, itemID string) (itemRow, string, error) {
	r, err := s.owned(ctx, q, authorID, itemID)
	if err != nil {
		return r, "", err
	}
	cat, err := s.categoryOf(r.kind)
	if err != nil {
		return r, "", err
	}
	if s.archived(cat) {
		return r, "", fault.New(fault.Conflict, "%s", archiveWhy)
	}
	return r, cat, nil
}

// Edit changes the text or visibility of an item of the author ("" keeps
// either as it is). An archived item cannot change.
func (s *Service) Edit(ctx context.Context, authorID, itemID, body, visibility string) (Item, error) {
	var out Item
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		r, cat, err := s.changeable(ctx, tx, authorID, itemID)
		if err != nil {
			return err
		}
		if r.status == StatusRemoved {
			return fault.New(fault.Conflict, "a moderator removed this item")
		}
		v, err := s.d.Door.Subject(ctx, tx, authorUse(), authorID)
		if err != nil {
			return err
		}
		sealed := r.body
		if body != "" {
			if body, err = s.cleanText("body", body); err != nil {
				return err
			}
			if sealed, err = v.SealItem(ctx, cat, r.id, []byte(body)); err != nil {
				return err
			}
		}
		switch visibility {
		case "":
			visibility = r.visibility
		case Public, Private:
		default:
			return fault.FieldError("visibility", "must be public or private")
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `UPDATE content_items SET body_sealed = $1, visibility = $2, edited_at = $3 WHERE id = $4`,
			sealed, visibility, now, r.id); err != nil {
			return err
		}
		r.body, r.visibility, r.edited = sealed, visibility, sql.NullTime{Time: now, Valid: true}
		out, err = s.open(ctx, v, r)
		return err
	})
	if err != nil {
		return Item{}, fmt.Errorf("content: edit: %w", err)
	}
	return out, nil
}

// Delete erases an item of the author: its row, its files and their
// blobs, and its keys (every copy of it is then unreadable). An item the
// policy archives is not deleted, and the refusal says why.
func (s *Service) Delete(ctx context.Context, authorID, itemID string) error {
	var blobs []string
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		r, _, err := s.changeable(ctx, tx, authorID, itemID)
		if err != nil {
			return err
		}
		blobs, err = s.eraseItems(ctx, tx, []itemRow{r})
		if err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: authorID, Action: "content.deleted", Subject: authorID,
			Detail: map[string]string{"item": r.id, "kind": r.kind}})
	})
	if err != nil {
		return fmt.Errorf("content: delete: %w", err)
	}
	return s.deleteBlobs(ctx, blobs)
}

// eraseItems deletes items with their files and moderation records and
// shreds their keys, in tx; it returns the blob keys to delete once tx
// commits.
func (s *Service) eraseItems(ctx context.Context, tx *sql.Tx, items []itemRow) ([]string, error) {
	var blobs []string
	for _, r := range items {
		cat, err := s.categoryOf(r.kind)
		if err != nil {
			cat = ""
		}
		files, err := s.filesOf(ctx, tx, []string{r.id})
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if err := s.shredFile(ctx, tx, f); err != nil {
				return nil, err
			}
			blobs = append(blobs, f.blob)
			if f.thumb != "" {
				blobs = append(blobs, f.thumb)
			}
		}
		if cat != "" {
			if err := s.d.Door.ShredItem(ctx, tx, r.subject, cat, r.id); err != nil {
				return nil, err
			}
		}
		for _, q := range []string{`DELETE FROM content_files WHERE item_id = $1`, `DELETE FROM content_actions WHERE item_id = $1`,
			`DELETE FROM content_reports WHERE item_id = $1`, `DELETE FROM content_items WHERE id = $1`} {
			if _, err := tx.ExecContext(ctx, q, r.id); err != nil {
				return nil, err
			}
		}
	}
	return blobs, nil
}

// shredFile destroys the keys of a file and of its thumbnail.
func (s *Service) shredFile(ctx context.Context, q store.Q, f fileRow) error {
	cat, err := s.categoryOf(f.kind)
	if err != nil {
		return nil // the policy no longer declares it: nothing could open it
	}
	for _, item := range []string{f.id, f.id + ".thumb"} {
		if err := s.d.Door.ShredItem(ctx, q, f.subject, cat, item); err != nil {
			return err
		}
	}
	return nil
}

// deleteBlobs removes blobs whose rows and keys are gone (what is left of
// them could not be opened anyway; the rights engine's verification lists
// the storage).
func (s *Service) deleteBlobs(ctx context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		if blob.CheckKey(k) != nil {
			continue // no file can be stored under such a key
		}
		if err := s.d.Blobs.Delete(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("content: delete files: %w", err)
	}
	return nil
}

// Mine lists the author's own items, newest first, with their files: the
// "my content" page. Hidden and private items are included.
func (s *Service) Mine(ctx context.Context, authorID string) ([]Item, error) {
	v, err := s.d.Door.Subject(ctx, s.d.DB, door.Subject(), authorID)
	if err != nil {
		return nil, err
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+itemCols+` FROM content_items WHERE subject_id = $1 ORDER BY created_at DESC, id`, v.ID())
	if err != nil {
		return nil, fmt.Errorf("content: mine: %w", err)
	}
	rs, err := scanItems(rows)
	if err != nil {
		return nil, fmt.Errorf("content: mine: %w", err)
	}
	return s.withFiles(ctx, v, rs)
}

// withFiles opens items with v and attaches their files.
func (s *Service) withFiles(ctx context.Context, v *door.View, rs []itemRow) ([]Item, error) {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	files, err := s.filesOf(ctx, s.d.DB, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(rs))
	for _, r := range rs {
		it, err := s.open(ctx, v, r)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if f.item == r.id {
				it.Files = append(it.Files, f.public())
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// Thread is a public thread: its visible public items, oldest first, each
// with its author's display name alone. An author whose processing is
// restricted, or whose state no longer lets the service use their
// content, is withheld. Every author is read through one door batch.
func (s *Service) Thread(ctx context.Context, site, thread string) ([]PublicItem, error) {
	thread, err := cleanThread(thread)
	if err != nil {
		return nil, err
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+itemCols+` FROM content_items
WHERE site = $1 AND thread = $2 AND visibility = 'public' AND status = 'visible' ORDER BY created_at, id`, site, thread)
	if err != nil {
		return nil, fmt.Errorf("content: thread: %w", err)
	}
	rs, err := scanItems(rows)
	if err != nil {
		return nil, fmt.Errorf("content: thread: %w", err)
	}
	if len(rs) == 0 {
		return []PublicItem{}, nil
	}
	var authors []string
	for _, r := range rs {
		if !slices.Contains(authors, r.subject) {
			authors = append(authors, r.subject)
		}
	}
	b, err := s.d.Door.Subjects(ctx, s.d.DB, publicUse(), authors)
	if err != nil {
		return nil, fmt.Errorf("content: thread: %w", err)
	}
	names, err := s.d.Names.DisplayNames(ctx, b, authors)
	if err != nil {
		return nil, fmt.Errorf("content: thread: %w", err)
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	files, err := s.filesOf(ctx, s.d.DB, ids)
	if err != nil {
		return nil, fmt.Errorf("content: thread: %w", err)
	}
	pictures, err := s.pictures(ctx, b, authors)
	if err != nil {
		return nil, fmt.Errorf("content: thread: %w", err)
	}
	out := []PublicItem{}
	for _, r := range rs {
		v, err := b.View(r.subject)
		if err != nil {
			continue // the author is gone
		}
		cat, err := s.categoryOf(r.kind)
		if err != nil || v.Check(cat) != nil {
			continue // withheld: restricted, or the policy no longer allows it
		}
		body, err := v.OpenItem(ctx, cat, r.id, r.body)
		if errors.Is(err, door.ErrShredded) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("content: thread: %w", err)
		}
		author := names[r.subject]
		if r.guestName != nil {
			// A guest's comment shows the name they gave with it.
			if n, err := v.OpenItem(ctx, cat, r.id, r.guestName); err == nil {
				author = string(n)
			}
		}
		p := PublicItem{ID: r.id, ParentID: r.parent, Author: author, Body: string(body), CreatedAt: r.created.UTC()}
		if r.guestName == nil {
			p.Picture = pictures[r.subject]
		}
		for _, f := range files {
			if f.item == r.id {
				p.Files = append(p.Files, f.public())
			}
		}
		out = append(out, p)
	}
	return out, nil
}

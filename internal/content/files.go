package content

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"steward/internal/blob"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
)

// File is an uploaded photo or video as its reader may see it.
type File struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Mime      string    `json:"mime"`
	Size      int64     `json:"size"`
	Width     int       `json:"width,omitempty"`
	Height    int       `json:"height,omitempty"`
	Thumbnail bool      `json:"thumbnail,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// fileRow is a file as stored.
type fileRow struct {
	id, item, subject, kind, mime, blob, thumb string
	name                                       []byte
	size                                       int64
	width, height                              int
	created                                    time.Time
}

func (f fileRow) public() File {
	return File{ID: f.id, Kind: f.kind, Mime: f.mime, Size: f.size, Width: f.width, Height: f.height, Thumbnail: f.thumb != "",
		CreatedAt: f.created.UTC()}
}

const fileCols = `id, item_id, subject_id, kind, name_sealed, mime, size, width, height, blob, thumb, created_at`

// filesOf reads the files of items.
func (s *Service) filesOf(ctx context.Context, q store.Q, itemIDs []string) ([]fileRow, error) {
	if len(itemIDs) == 0 {
		return nil, nil
	}
	var out []fileRow
	for start := 0; start < len(itemIDs); start += 500 {
		part := itemIDs[start:min(len(itemIDs), start+500)]
		ph := make([]string, len(part))
		args := make([]any, len(part))
		for i, id := range part {
			ph[i], args[i] = fmt.Sprintf("$%d", i+1), id
		}
		rows, err := q.QueryContext(ctx, `SELECT `+fileCols+` FROM content_files WHERE item_id IN (`+strings.Join(ph, ", ")+`) ORDER BY created_at, id`, args...)
		if err != nil {
			return nil, err
		}
		fs, err := scanFiles(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	return out, nil
}

func scanFiles(rows *sql.Rows) ([]fileRow, error) {
	defer rows.Close()
	var out []fileRow
	for rows.Next() {
		var f fileRow
		if err := rows.Scan(&f.id, &f.item, &f.subject, &f.kind, &f.name, &f.mime, &f.size, &f.width, &f.height, &f.blob, &f.thumb,
			&f.created); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// blobKey is where a file of a subject is stored.
func blobKey(subjectID, fileID string) string {
	return "content/" + strings.ToLower(subjectID) + "/" + fileID
}

// cleanName keeps the name the author gave a file, for their export only
// (it is sealed, and never used as a path).
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return -1
		}
		return r
	}, name)
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "")
	}
	if len(name) > 255 {
		name = name[:255]
		for !utf8.ValidString(name) {
			name = name[:len(name)-1]
		}
	}
	if name == "" || name == "." || name == ".." {
		name = "upload"
	}
	return name
}

// Attach adds a photo or video to an item of the author. The type comes
// from the bytes, never the name; the upload is spooled (encrypted) while
// it is checked, its location and device metadata are removed, and only
// the cleaned file, sealed under its own key, reaches blob storage. A
// refused upload leaves nothing: no row, no blob.
func (s *Service) Attach(ctx context.Context, authorID, itemID, name string, body io.Reader) (File, error) {
	r, err := s.owned(ctx, s.d.DB, authorID, itemID)
	if err != nil {
		return File{}, err
	}
	if r.status == StatusRemoved {
		return File{}, fault.New(fault.Conflict, "a moderator removed this item")
	}
	sp, err := door.NewSpool(s.spoolDir(), body, max(s.lim.MaxPhoto, s.lim.MaxVideo))
	if err != nil {
		return File{}, err
	}
	defer sp.Close()
	kind, err := detect(sp)
	if err != nil {
		return File{}, err
	}
	if kind == FilePhoto && sp.Size() > s.lim.MaxPhoto {
		return File{}, fault.New(fault.TooLarge, "a photo may be at most %d MB", s.lim.MaxPhoto>>20)
	}
	cat, err := s.categoryOf(kind)
	if err != nil {
		return File{}, err
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, authorUse(), authorID)
	if err != nil {
		return File{}, err
	}
	f := fileRow{id: store.NewID("f_"), item: r.id, subject: v.ID(), kind: kind, created: s.now()}
	if err := s.storeFile(ctx, v, cat, &f, sp); err != nil {
		return File{}, err
	}
	if f.name, err = v.SealItem(ctx, cat, f.id, []byte(cleanName(name))); err == nil {
		// The item may have gone while the file was cleaned: the row goes
		// in only beside a live item of the author.
		var res sql.Result
		res, err = s.d.DB.ExecContext(ctx, `INSERT INTO content_files (`+fileCols+`)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 WHERE EXISTS (SELECT 1 FROM content_items WHERE id = $2 AND subject_id = $3 AND status <> 'removed')`,
			f.id, f.item, f.subject, f.kind, f.name, f.mime, f.size, f.width, f.height, f.blob, f.thumb, f.created)
		if n, _ := rowsAffected(res, err); err == nil && n == 0 {
			err = fault.New(fault.NotFound, "no such item")
		}
	}
	if err != nil {
		// No row: no blob either, and no key.
		s.deleteBlobs(context.WithoutCancel(ctx), slices.DeleteFunc([]string{f.blob, f.thumb}, func(k string) bool { return k == "" }))
		s.shredFile(context.WithoutCancel(ctx), s.d.DB, f)
		if fault.Is(err, fault.NotFound) {
			return File{}, err
		}
		return File{}, fmt.Errorf("content: attach: %w", err)
	}
	return f.public(), nil
}

// storeFile cleans the spooled upload into the sealer and the sealer into
// blob storage, under f's key, with its thumbnail, and fills in what the
// cleaning found. On an error nothing is left in storage.
func (s *Service) storeFile(ctx context.Context, v *door.View, cat string, f *fileRow, sp *door.Spool) error {
	f.blob = blobKey(f.subject, f.id)
	kind := f.kind
	if kind == FilePicture {
		kind = FilePhoto
	}
	info, err := s.store(ctx, v, cat, f.id, f.blob, func(w io.Writer) (cleaned, error) { return clean(kind, sp, w) })
	if err != nil {
		return err
	}
	f.mime, f.size, f.width, f.height = info.mime, info.size, info.width, info.height
	if info.thumb == nil {
		return nil
	}
	f.thumb = f.blob + ".thumb"
	if _, err := s.store(ctx, v, cat, f.id+".thumb", f.thumb, func(w io.Writer) (cleaned, error) {
		_, err := w.Write(info.thumb)
		return cleaned{}, err
	}); err != nil {
		s.deleteBlobs(context.WithoutCancel(ctx), []string{f.blob})
		return err
	}
	return nil
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// spoolDir is where uploads wait while they are checked.
func (s *Service) spoolDir() string {
	if s.d.SpoolDir != "" {
		return s.d.SpoolDir
	}
	return os.TempDir()
}

// store writes what produce yields, sealed under the item key of item, to
// the blob key; the blob exists only if everything succeeded.
func (s *Service) store(ctx context.Context, v *door.View, category, item, key string, produce func(io.Writer) (cleaned, error)) (cleaned, error) {
	var info cleaned
	err := blob.Write(ctx, s.d.Blobs, key, func(w io.Writer) error {
		sealer, err := v.SealStream(ctx, category, item, w)
		if err != nil {
			return err
		}
		if info, err = produce(sealer); err != nil {
			return err
		}
		return sealer.Close()
	})
	if err != nil {
		return cleaned{}, err // the cleaner's refusal, as it was
	}
	return info, nil
}

// OpenFile opens a file for a reader: its author (any item), or anyone
// for a file of a visible public item whose author the service may still
// show. thumb asks for the thumbnail.
func (s *Service) OpenFile(ctx context.Context, readerID, fileID string, thumb bool) (io.ReadCloser, File, error) {
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+fileCols+` FROM content_files WHERE id = $1`, fileID)
	if err != nil {
		return nil, File{}, err
	}
	fs, err := scanFiles(rows)
	if err != nil {
		return nil, File{}, err
	}
	notFound := fault.New(fault.NotFound, "no such file")
	if len(fs) == 0 {
		return nil, File{}, notFound
	}
	f := fs[0]
	use := publicUse()
	if readerID == f.subject {
		use = door.Subject()
	} else if f.kind != FilePicture { // a picture shows wherever its owner's posts do
		var visibility, status string
		if err := s.d.DB.QueryRowContext(ctx, `SELECT visibility, status FROM content_items WHERE id = $1`, f.item).Scan(&visibility, &status); err != nil ||
			visibility != Public || status != StatusVisible {
			return nil, File{}, notFound
		}
	}
	cat, err := s.categoryOf(f.kind)
	if err != nil {
		return nil, File{}, notFound
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, use, f.subject)
	if err != nil {
		return nil, File{}, err
	}
	if use != door.Subject() && v.Check(cat) != nil {
		return nil, File{}, notFound // withheld from the public
	}
	key, item := f.blob, f.id
	if thumb {
		if f.thumb == "" {
			return nil, File{}, notFound
		}
		key, item = f.thumb, f.id+".thumb"
	}
	rc, err := s.d.Blobs.Get(ctx, key)
	if err != nil {
		return nil, File{}, err
	}
	plain, err := v.OpenStream(ctx, cat, item, rc)
	if err != nil {
		rc.Close()
		return nil, File{}, err
	}
	pub := f.public()
	if thumb {
		pub.Mime = "image/jpeg"
	}
	return readCloser{plain, rc}, pub, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

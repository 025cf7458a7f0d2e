package content

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
)

// SetPicture makes an image the member's profile picture, in place of any
// before it: cleaned of its metadata like any photo, sealed under its own
// key, shown (as a thumbnail) beside what the member posts publicly.
func (s *Service) SetPicture(ctx context.Context, subjectID string, body io.Reader) (File, error) {
	cat, err := s.categoryOf(FilePicture)
	if err != nil {
		return File{}, err
	}
	sp, err := door.NewSpool(s.spoolDir(), body, s.lim.MaxPhoto)
	if err != nil {
		return File{}, err
	}
	defer sp.Close()
	kind, err := detect(sp)
	if err != nil {
		return File{}, err
	}
	if kind != FilePhoto {
		return File{}, fault.New(fault.Unsupported, "a picture must be a photo (JPEG, PNG, GIF or WebP)")
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, door.Subject(), subjectID)
	if err != nil {
		return File{}, err
	}
	f := fileRow{id: store.NewID("f_"), subject: v.ID(), kind: FilePicture, created: s.now()}
	if err := s.storeFile(ctx, v, cat, &f, sp); err != nil {
		return File{}, err
	}
	var old []fileRow
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if old, err = s.dropPictures(ctx, tx, f.subject); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO content_files (`+fileCols+`) VALUES ($1, '', $2, 'picture', NULL, $3, $4, $5, $6, $7, $8, $9)`,
			f.id, f.subject, f.mime, f.size, f.width, f.height, f.blob, f.thumb, f.created)
		return err
	})
	if err != nil {
		s.deleteBlobs(context.WithoutCancel(ctx), nonEmpty(f.blob, f.thumb))
		s.shredFile(context.WithoutCancel(ctx), s.d.DB, f)
		return File{}, fmt.Errorf("content: picture: %w", err)
	}
	for _, o := range old {
		s.deleteBlobs(ctx, nonEmpty(o.blob, o.thumb))
	}
	return f.public(), nil
}

// RemovePicture deletes the member's profile picture.
func (s *Service) RemovePicture(ctx context.Context, subjectID string) error {
	var old []fileRow
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		old, err = s.dropPictures(ctx, tx, subjectID)
		return err
	})
	if err != nil {
		return fmt.Errorf("content: picture: %w", err)
	}
	for _, o := range old {
		if err := s.deleteBlobs(ctx, nonEmpty(o.blob, o.thumb)); err != nil {
			return err
		}
	}
	return nil
}

// dropPictures deletes the subject's picture rows and shreds their keys,
// in tx, returning them (their blobs go once tx commits).
func (s *Service) dropPictures(ctx context.Context, tx *sql.Tx, subjectID string) ([]fileRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+fileCols+` FROM content_files WHERE subject_id = $1 AND kind = 'picture'`, subjectID)
	if err != nil {
		return nil, err
	}
	old, err := scanFiles(rows)
	if err != nil {
		return nil, err
	}
	for _, o := range old {
		if err := s.shredFile(ctx, tx, o); err != nil {
			return nil, err
		}
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM content_files WHERE subject_id = $1 AND kind = 'picture'`, subjectID)
	return old, err
}

// pictures returns the picture file of each author the batch's use may
// show it for.
func (s *Service) pictures(ctx context.Context, b *door.Batch, authors []string) (map[string]string, error) {
	out := map[string]string{}
	cat, err := s.categoryOf(FilePicture)
	if err != nil || len(authors) == 0 {
		return out, nil
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT subject_id, id FROM content_files WHERE kind = 'picture' AND subject_id IN (`+
		store.Placeholders(len(authors), 1)+`)`, store.Args(authors)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var subject, id string
		if err := rows.Scan(&subject, &id); err != nil {
			return nil, err
		}
		if v, err := b.View(subject); err == nil && v.Check(cat) == nil {
			out[subject] = id
		}
	}
	return out, rows.Err()
}

func nonEmpty(keys ...string) []string {
	var out []string
	for _, k := range keys {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

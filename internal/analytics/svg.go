package analytics

import (
	"fmt"
	"html"
	"html/template"
	"strconv"
	"strings"
)

// Charts are drawn on the server as inline SVG, so the console needs no
// JavaScript and no chart library. Every chart has a title and a text
// equivalent (role="img" with aria-label; the console also shows the
// numbers in a table), and all text is escaped.

// LineChart draws views and visitors over time.
func LineChart(title string, points []Point, hourly bool) template.HTML {
	const w, h, left, right, top, bottom = 720, 240, 48, 12, 16, 36
	var max int64 = 1
	for _, p := range points {
		if p.Views > max {
			max = p.Views
		}
		if p.Visitors > max {
			max = p.Visitors
		}
	}
	max = niceCeil(max)
	plotW, plotH := float64(w-left-right), float64(h-top-bottom)
	x := func(i int) float64 {
		if len(points) <= 1 {
			return float64(left) + plotW/2
		}
		return float64(left) + plotW*float64(i)/float64(len(points)-1)
	}
	y := func(v int64) float64 { return float64(top) + plotH*(1-float64(v)/float64(max)) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s" class="chart">`, w, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	// Grid and y labels at 0, half and max.
	for _, v := range []int64{0, max / 2, max} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, left, w-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#555">%s</text>`, left-6, y(v)+4, esc(humanInt(v)))
	}
	series := []struct {
		name  string
		color string
		val   func(Point) int64
	}{
		{"Views", "#1f5fa8", func(p Point) int64 { return p.Views }},
		{"Visitors", "#c2571a", func(p Point) int64 { return p.Visitors }},
	}
	for _, s := range series {
		var pts []string
		for i, p := range points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(s.val(p))))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.color, strings.Join(pts, " "))
		}
	}
	// X labels: first, middle, last.
	if n := len(points); n > 0 {
		for _, i := range uniq(0, n/2, n-1) {
			label := points[i].Start.Format("Jan 2")
			if hourly {
				label = points[i].Start.Format("Jan 2 15:04")
			}
			anchor := "middle"
			if i == 0 {
				anchor = "start"
			} else if i == n-1 {
				anchor = "end"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="%s" fill="#555">%s</text>`, x(i), h-bottom+16, anchor, esc(label))
		}
	}
	// Legend.
	for i, s := range series {
		lx := left + i*100
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" font-size="11" fill="#333">%s</text>`,
			lx, h-12, s.color, lx+14, h-3, s.name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every dynamic string above is escaped
}

// BarChart draws the top rows of a dimension report as horizontal bars.
func BarChart(title string, rows []Row, limit int) template.HTML {
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	const w, rowH, labelW, top = 720, 22, 260, 8
	h := top*2 + rowH*max(len(rows), 1)
	var maxV int64 = 1
	for _, r := range rows {
		if r.Views > maxV {
			maxV = r.Views
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s" class="chart">`, w, h, esc(title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(title))
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text x="8" y="%d" font-size="12" fill="#555">No data in this range.</text>`, top+15)
	}
	barMax := float64(w - labelW - 70)
	for i, r := range rows {
		yy := top + i*rowH
		label := r.Value
		if label == "" {
			label = "(unknown)"
		}
		if len([]rune(label)) > 40 {
			label = string([]rune(label)[:39]) + "…"
		}
		bw := barMax * float64(r.Views) / float64(maxV)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="end" fill="#222">%s</text>`, labelW-8, yy+15, esc(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="#1f5fa8"/>`, labelW, yy+4, bw, rowH-8)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" fill="#333">%s</text>`, float64(labelW)+bw+6, yy+15, esc(humanInt(r.Views)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every dynamic string above is escaped
}

func esc(s string) string { return html.EscapeString(s) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v int64) int64 {
	if v <= 1 {
		return 1
	}
	p := int64(1)
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func humanInt(v int64) string {
	s := strconv.FormatInt(v, 10)
	if v < 10000 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func uniq(xs ...int) []int {
	var out []int
	seen := map[int]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

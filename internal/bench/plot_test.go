//go:build linux

package bench

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// series is one latency distribution to plot.
type series struct {
	name string
	lat  []time.Duration // sorted
}

func newSeries(name string, sorted []time.Duration) series { return series{name: name, lat: sorted} }

// Plot geometry, in pixels.
const (
	plotW, plotH              = 960, 540
	marginL, marginR          = 80, 250
	marginT, marginB          = 50, 60
	maxNines                  = 3.0 // the x axis ends at 99.9%
	plotLeft, plotRight       = marginL, plotW - marginR
	plotTop, plotBottom       = marginT, plotH - marginB
	legendX, legendY, legendH = plotRight + 20, plotTop + 10, 44
)

var palette = []color.RGBA{{90, 90, 90, 255}, {31, 119, 180, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {255, 127, 14, 255}, {148, 103, 189, 255}}

// percentilePlot draws each series' latency against its percentile, the way HdrHistogram plots are
// read: the x axis is -log10(1-q), so 0%, 90%, 99% and 99.9% are evenly spaced and the tail is as
// visible as the median; the y axis is logarithmic milliseconds. Only percentiles the samples
// support are drawn (a series of n calls stops at 1-1/n). It returns the PNG.
func percentilePlot(title string, ss []series) ([]byte, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		if len(s.lat) == 0 {
			return nil, fmt.Errorf("plot: %s has no samples", s.name)
		}
		lo = min(lo, ms64(s.lat[0]))
		hi = max(hi, ms64(s.lat[quantileIndex(len(s.lat), 1-math.Pow(10, -maxNines))]))
	}
	if lo <= 0 {
		return nil, errors.New("plot: a latency of zero")
	}
	yLo, yHi := math.Floor(math.Log10(lo)*2)/2, math.Ceil(math.Log10(hi)*2)/2 // half decades
	if yHi-yLo < 1 {
		yHi = yLo + 1
	}
	px := func(nines float64) int { return plotLeft + int(nines/maxNines*float64(plotRight-plotLeft)+0.5) }
	py := func(msv float64) int {
		f := (math.Log10(msv) - yLo) / (yHi - yLo)
		return plotBottom - int(f*float64(plotBottom-plotTop)+0.5)
	}

	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	grid, axis, ink := color.RGBA{225, 225, 225, 255}, color.RGBA{60, 60, 60, 255}, color.RGBA{0, 0, 0, 255}

	// y grid: 1, 2, 5 × 10^k ms.
	for k := math.Floor(yLo); k <= yHi; k++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, k)
			if l := math.Log10(v); l < yLo-1e-9 || l > yHi+1e-9 {
				continue
			}
			y := py(v)
			line(img, plotLeft, y, plotRight, y, grid, 1)
			label := fmt.Sprintf("%g", v)
			text(img, plotLeft-8-7*len(label), y+4, label, ink)
		}
	}
	// x grid: the percentiles people quote.
	for _, q := range []struct {
		q     float64
		label string
	}{{0, "0%"}, {0.5, "50%"}, {0.9, "90%"}, {0.99, "99%"}, {0.999, "99.9%"}} {
		x := px(-math.Log10(1 - q.q))
		line(img, x, plotTop, x, plotBottom, grid, 1)
		text(img, x-7*len(q.label)/2, plotBottom+18, q.label, ink)
	}
	line(img, plotLeft, plotBottom, plotRight, plotBottom, axis, 1)
	line(img, plotLeft, plotTop, plotLeft, plotBottom, axis, 1)
	text(img, plotLeft, 20, title, ink)
	text(img, (plotLeft+plotRight)/2-70, plotH-16, "percentile of calls", ink)
	text(img, 8, plotTop-12, "latency (ms, log)", ink)

	for i, s := range ss {
		c := palette[i%len(palette)]
		n := len(s.lat)
		prevX, prevY := -1, -1
		for j := range n {
			q := float64(j) / float64(n)
			nines := -math.Log10(1 - q)
			if nines > maxNines {
				break
			}
			x, y := px(nines), py(ms64(s.lat[j]))
			if prevX >= 0 {
				line(img, prevX, prevY, x, y, c, 2)
			}
			prevX, prevY = x, y
		}
		ly := legendY + i*legendH
		line(img, legendX, ly, legendX+24, ly, c, 3)
		text(img, legendX+32, ly+4, s.name, ink)
		text(img, legendX+32, ly+20, fmt.Sprintf("p50 %.3f  p99 %.3f ms", ms64(pct(s.lat, 50)), ms64(pct(s.lat, 99))), axis)
	}
	text(img, legendX, legendY+len(ss)*legendH+4, fmt.Sprintf("n = %d..%d calls each", minLen(ss), maxLen(ss)), axis)

	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// quantileIndex is the index of the q-quantile (0 ≤ q < 1) among n sorted samples.
func quantileIndex(n int, q float64) int { return min(int(q*float64(n)), n-1) }

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func minLen(ss []series) int {
	n := math.MaxInt
	for _, s := range ss {
		n = min(n, len(s.lat))
	}
	return n
}

func maxLen(ss []series) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s.lat))
	}
	return n
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a segment w pixels thick (Bresenham, each point a w×w square).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, w int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fill(img, image.Rect(x0, y0, x0+w, y0+w).Intersect(img.Bounds()), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

// text draws s with its baseline at y.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

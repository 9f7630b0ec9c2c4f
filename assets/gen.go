//go:build ignore

// gen draws authkeeper's icons: a key inside a ring, one colour per tray state; with no server yet, the
// ring and key are drawn hollow, in grey on a pale disc: there is nothing to keep yet. (The disc is
// opaque: a tray that does not clear an icon's transparent pixels — Wine's — would show the icon set
// before it through them.) The PNGs are committed;
// run `go generate ./assets` after changing this file. Linux trays need PNG (not SVG or ICO).
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
)

func main() {
	icons := []struct {
		name   string
		size   int
		c      color.RGBA
		hollow bool
	}{
		{"icon.png", 512, color.RGBA{0x1f, 0x6f, 0xeb, 0xff}, false},
		{"tray-fresh.png", 64, color.RGBA{0x2e, 0xa0, 0x43, 0xff}, false},
		{"tray-busy.png", 64, color.RGBA{0x1f, 0x6f, 0xeb, 0xff}, false},
		{"tray-attention.png", 64, color.RGBA{0xd2, 0x99, 0x22, 0xff}, false},
		{"tray-error.png", 64, color.RGBA{0xcf, 0x22, 0x2e, 0xff}, false},
		{"tray-empty.png", 64, color.RGBA{0x8c, 0x95, 0x9f, 0xff}, true},
	}
	for _, ic := range icons {
		if err := write(ic.name, draw(ic.size, ic.c, ic.hollow)); err != nil {
			log.Fatal(err)
		}
	}
}

func write(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// draw renders a filled disc in c with a white key: a ring bow at the left and a shaft with two teeth.
// Hollow, it renders the disc's rim and the key in c on a pale disc.
func draw(size int, c color.RGBA, hollow bool) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	pale := color.RGBA{0xf4, 0xf5, 0xf7, 0xff}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			fx, fy := (float64(x)+0.5)/s, (float64(y)+0.5)/s
			d := math.Hypot(fx-0.5, fy-0.5)
			if d > 0.48 {
				continue
			}
			if !hollow {
				img.Set(x, y, c)
			} else if d > 0.39 {
				img.Set(x, y, c) // the rim
			} else {
				img.Set(x, y, pale)
			}
			bow := math.Hypot(fx-0.33, fy-0.5)
			onBow := bow < 0.15 && bow > 0.07
			onShaft := fx > 0.44 && fx < 0.8 && math.Abs(fy-0.5) < 0.045
			onTooth := (fx > 0.62 && fx < 0.68 || fx > 0.72 && fx < 0.78) && fy > 0.5 && fy < 0.64
			switch {
			case (onBow || onShaft || onTooth) && hollow:
				img.Set(x, y, c)
			case onBow || onShaft || onTooth:
				img.Set(x, y, white)
			}
		}
	}
	return img
}

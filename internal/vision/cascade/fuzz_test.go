package cascade_test

import (
	"context"
	"image"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
)

// FuzzLoad feeds Load arbitrary XML: it must return an error or a cascade
// that runs without panicking.
func FuzzLoad(f *testing.F) {
	f.Add(`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
		<height>8</height><width>8</width><stages><_><stageThreshold>0.5</stageThreshold><weakClassifiers>
		<_><internalNodes>0 -1 0 0.5</internalNodes><leafValues>-1 1</leafValues></_></weakClassifiers></_></stages>
		<features><_><rects><_>0 0 8 8 -1.</_><_>4 0 4 8 2.</_></rects></_></features></cascade></opencv_storage>`)
	f.Add(`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>LBP</featureType>
		<height>6</height><width>6</width><featureParams><maxCatCount>256</maxCatCount></featureParams>
		<stages><_><stageThreshold>0</stageThreshold><weakClassifiers>
		<_><internalNodes>0 -1 0 -1 -1 -1 -1 0 0 0 0</internalNodes><leafValues>1 -1</leafValues></_></weakClassifiers></_></stages>
		<features><_><rect>0 0 2 2</rect></_></features></cascade></opencv_storage>`)
	f.Add(`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
		<height>8</height><width>8</width><stages><_><stageThreshold>0</stageThreshold><weakClassifiers>
		<_><internalNodes>1 -1 0 0.5 0 -2 0 0.2</internalNodes><leafValues>-1 1 2</leafValues></_></weakClassifiers></_></stages>
		<features><_><rects><_>0 0 8 8 -1.</_><_>4 0 4 8 2.</_></rects></_></features></cascade></opencv_storage>`)
	f.Add(`<opencv_storage><cascade><stageType>BOOST</stageType><featureType>HAAR</featureType>
		<height>8</height><width>8</width><stages><_><stageThreshold>0</stageThreshold><weakClassifiers>
		<_><internalNodes>0 -1 0 0.1</internalNodes><leafValues>-1 1</leafValues></_></weakClassifiers></_></stages>
		<features><_><rects><_>4 0 3 2 -1.</_><_>4 1 2 1 2.</_></rects><tilted>1</tilted></_></features></cascade></opencv_storage>`)
	img := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	f.Fuzz(func(t *testing.T, xml string) {
		c, err := cascade.Load(strings.NewReader(xml))
		if err != nil {
			return
		}
		if _, err := c.Detect(context.Background(), img, cascade.Params{ScaleFactor: 1.3, MinNeighbors: 1}); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDetectRegions searches arbitrary regions (inside, across and
// outside the image, empty, inverted) of a sub-image: it must not panic,
// and every window it reports must lie in a region, give or take the
// pixel that scaling back rounds.
func FuzzDetectRegions(f *testing.F) {
	c, err := cascade.FrontalFaceLBP()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(0, 0, 64, 48, 10, 10, 60, 40)
	f.Add(-100, -5, 20, 300, 30, 2, 31, 3)
	f.Add(50, 40, 10, 5, -1, -1, 1000, 1000)
	base := image.NewGray(image.Rect(0, 0, 80, 60))
	for i := range base.Pix {
		base.Pix[i] = uint8(i*13 + i/80*7)
	}
	img := base.SubImage(image.Rect(7, 5, 71, 53)).(*image.Gray)
	f.Fuzz(func(t *testing.T, x0, y0, x1, y1, x2, y2, x3, y3 int) {
		clamp := func(v int) int { return max(-1000, min(1000, v)) }
		regions := []image.Rectangle{
			{Min: image.Pt(clamp(x0), clamp(y0)), Max: image.Pt(clamp(x1), clamp(y1))},
			{Min: image.Pt(clamp(x2), clamp(y2)), Max: image.Pt(clamp(x3), clamp(y3))},
		}
		got, err := c.DetectRegions(context.Background(), img, regions, cascade.Params{ScaleFactor: 1.2, MinNeighbors: 0})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range got {
			if !d.Rect.In(regions[0].Inset(-1)) && !d.Rect.In(regions[1].Inset(-1)) {
				t.Fatalf("window %v outside the regions %v", d.Rect, regions)
			}
		}
	})
}

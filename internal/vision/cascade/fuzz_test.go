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

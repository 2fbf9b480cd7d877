package redact

import "testing"

func TestURLs(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:pw@cam/live":                        "rtsp://***@cam/live",
		"open 'rtsp://admin:p@ss@10.0.0.1:554/x' failed":  "open 'rtsp://***@10.0.0.1:554/x' failed",
		"https://tok@api.example/v1 and http://h/x?a=b@c": "https://***@api.example/v1 and http://h/x?a=b@c",
		"mail me@example.com":                             "mail me@example.com",
		"rtsp://cam/live":                                 "rtsp://cam/live",
	} {
		if got := URLs(in); got != want {
			t.Errorf("URLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	got := Text("auth p@ss/w0rd failed for rtsp://u:p%40ss%2Fw0rd@h/x; pin 12", "p@ss/w0rd", "12")
	if want := "auth *** failed for rtsp://***@h/x; pin 12"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	if got := Text("token a%2Bb%3D", "a+b="); got != "token ***" {
		t.Errorf("escaped secret: %q", got)
	}
}

func TestSplitUserinfo(t *testing.T) {
	clean, user, pass, ok := SplitUserinfo("rtsp://admin:p%40ss@10.0.0.1:554/live?ch=1")
	if clean != "rtsp://10.0.0.1:554/live?ch=1" || user != "admin" || pass != "p@ss" || !ok {
		t.Errorf("got %q %q %q %v", clean, user, pass, ok)
	}
	if clean, user, _, ok := SplitUserinfo("rtsp://admin@cam/x"); clean != "rtsp://cam/x" || user != "admin" || ok {
		t.Errorf("user only: %q %q %v", clean, user, ok)
	}
	if clean, user, _, _ := SplitUserinfo("/srv/videos"); clean != "/srv/videos" || user != "" {
		t.Errorf("path: %q %q", clean, user)
	}
}

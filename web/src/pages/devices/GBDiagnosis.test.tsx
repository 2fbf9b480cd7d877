// The "why no video" card against answers shaped as DescribeDeviceDiagnosis's
// (the app test TestGB28181LiveVideo checks those against a real platform).
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { stubActions } from "../../testServer";
import { GBDiagnosis } from "./GBDiagnosis";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("GBDiagnosis", () => {
  it("shows the hints, the registration, and the stream's RTP and SSRC", async () => {
    const sent = stubActions({
      DescribeDeviceDiagnosis: () => ({
        DeviceId: "dev-1", GbId: "34020000001310000001", RegisteredAs: "34020000001320000001", Registered: true, Online: true,
        SipTransport: "UDP", RemoteAddr: "10.0.0.9:5060", LastRegisterTime: "2026-12-06T10:00:00.000Z", KeepaliveAgeMs: 12000,
        InCatalog: true, ChannelOn: true, Hints: ["RTP arrives with SSRC [1234567890], but the INVITE asked for 0200000001"],
        Stream: { Active: true, Transport: "UDP", MediaIp: "203.0.113.5", LocalPort: 30002, Remote: "198.51.100.7:40000", SdpSent: "v=0 sent",
          SdpReceived: "v=0 received", SsrcExpected: "0200000001", SsrcSeen: ["1234567890"], RtpPackets: 0, RtpBytes: 0, WrongSsrcPackets: 311,
          MalformedPackets: 0, LostPackets: 0, Codec: "", InviteTime: "2026-12-06T10:00:01.000Z", FirstPacketTime: "", LastPacketTime: "", LastError: "",
          Receiver: "w1" },
      }),
    });
    render(<GBDiagnosis id="dev-1" />);
    expect(await screen.findByText(/but the INVITE asked for 0200000001/)).toBeTruthy();
    expect(screen.getByText(/311 wrong SSRC/)).toBeTruthy();
    expect(screen.getByText(/expected 0200000001, also seen 1234567890/)).toBeTruthy();
    expect(screen.getByText(/UDP to 203\.0\.113\.5:30002, from 198\.51\.100\.7:40000, received by worker w1/)).toBeTruthy();
    expect(screen.getByText(/12 s ago/)).toBeTruthy();
    expect(sent[0]).toEqual({ action: "DescribeDeviceDiagnosis", body: { DeviceId: "dev-1" } });
  });
  it("says when the device has not registered and no stream was asked for", async () => {
    stubActions({
      DescribeDeviceDiagnosis: () => ({ DeviceId: "dev-2", RegisteredAs: "34020000001320000002", Registered: false, Online: false, SipTransport: "",
        RemoteAddr: "", LastRegisterTime: "", KeepaliveAgeMs: 0, InCatalog: false, ChannelOn: false, Hints: ["34020000001320000002 has not registered"] }),
    });
    render(<GBDiagnosis id="dev-2" />);
    expect(await screen.findByText(/— not registered/)).toBeTruthy();
    expect(screen.queryByText(/^RTP$/)).toBeNull();
  });
});

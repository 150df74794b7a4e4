import Foundation

/// A self-signed certificate for `localhost` / 127.0.0.1 (valid until 2126), made for these tests with
/// `openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=localhost`.
enum TestCertificate {
    static let certificatePEM = """
-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIUKV2vja55GXdoeZoYfuh94KN0hoQwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjE1NTQzNFoYDzIxMjYx
MDI5MTU1NDM0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQDlVEZX+DQ4MDFQWKVbNbpU8R6xd2RE0ULsoa/QheiK
sFAti6ARhY4qCzT6HCIHx61j10UzcEovfUAiHcfOMKdwYGg+4X0FXUPabKfUmgro
tsXMyKwoD7VCnEYUn8qnPB95PU2nOUH4pdUVdgsfd03QXaZ/F6B2xTgFCT+DKtHt
y8PvrEHWvXVCoPH4GN+0FvonlmkI6ogNIfB7fH/R8t80pfTBwnr5g6CB5xZJZCKB
WoLRM+18VltNaAjo6S0h01zUGFFLF/rv/yeoFg9nriSM/Ushlk0zYyQU29e5DwxG
AgXr0pRE+r4Uroz7AsLBqN7WxNmPwEjy7nk1Y5v4QjO5AgMBAAGjbzBtMB0GA1Ud
DgQWBBQePAgU7Bh/8r5P5TdRYz9uHccjPzAfBgNVHSMEGDAWgBQePAgU7Bh/8r5P
5TdRYz9uHccjPzAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9z
dIcEfwAAATANBgkqhkiG9w0BAQsFAAOCAQEATK599ugUWU4payWTWtBCBUKU1Aza
B6duhqZ52rpElp7CAIyfqo24lpepwmEgdMNrA2eGb+F1ekH9QNVeUJiRMU6SwT5W
CL/F3ABgTHo0Yk1ZUZZa7hCPHfgwOjhuBOBDYQhBY3xexulOUM+QGszoVGMENyZf
m63IKxzYHOjBSIewfzmXkOesJb1C1RMwzB4WuLD60VmrVUbQX+5jhMx5IwrGpqub
DjPRubH6DRtTP4Zaq2tD1zLuzLjP/40VfkHb6RPjcfCdT3LjyecqFHswIWfH9clO
VtmcFidzTNRgCwunPVahG+sIMUrF+HS2Yr/m5XwnHwJSL656VEbN0edUkA==
-----END CERTIFICATE-----
"""

    static let privateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDlVEZX+DQ4MDFQ
WKVbNbpU8R6xd2RE0ULsoa/QheiKsFAti6ARhY4qCzT6HCIHx61j10UzcEovfUAi
HcfOMKdwYGg+4X0FXUPabKfUmgrotsXMyKwoD7VCnEYUn8qnPB95PU2nOUH4pdUV
dgsfd03QXaZ/F6B2xTgFCT+DKtHty8PvrEHWvXVCoPH4GN+0FvonlmkI6ogNIfB7
fH/R8t80pfTBwnr5g6CB5xZJZCKBWoLRM+18VltNaAjo6S0h01zUGFFLF/rv/yeo
Fg9nriSM/Ushlk0zYyQU29e5DwxGAgXr0pRE+r4Uroz7AsLBqN7WxNmPwEjy7nk1
Y5v4QjO5AgMBAAECggEAGNfBzQrOwV17IhyQQSq3VjdOn2PzIT9YFCFJ1fmDoO6L
qPtsqilBJs3S/dspVpVrc5rg3Lsn1jAnz+pQ+EWuBc7zzAgKTpf1X0aRAcd0MhSG
pfIBME/PT3l1YAuVXPt231/kNx7NRj3UsP/6IXz/mXhjrnXlRKiFson3buKnHi7V
uMM0CpEzpkapijNEdlOxJmBpZNNXGXcNMuM08+Gf0SEMFiHwgxu2IgoklEqByHRr
ps4hw9thMsVZZdExutPWYJenCwZfLugasxww9780Q1NioBDUMsnlJaJSY/ovtHbR
oYCw7pe6P/fdooKVAHX5d5JP7Nj3IGrkkK8/RAv1gQKBgQD2Js8pEhXW1YP1N878
TuCvIGoezzvdLIV8vfZ5BrFHC2HQoQYuhL+aIwCdMY8uiQKaH3xoUu0D4G3NN1M4
+zSTX08VjtFDJ9VNzgKn2H7bIP0USj46OdwvP3T4OuOpd6AyhOCrOSZGumFTLyZp
PDentJtS+QAsoLp6B44jBlfn2QKBgQDugSnNEiLzT0Nliw39FXr30db3AsrQa/SJ
vQpHOl5vMG3DaVbS4cN+SyFMfZrcB0Oxsj9elERJ/QNQXhHwwrLdReiQSYD/47z3
pZP4OtGbAQbebTTVx0/THhRjL+aiFYaDJDl0GNdpI3OyZlRDV+/SGEWiPYI3bG9s
JWu/5fQe4QKBgG1P7s+eaHRvfZp4nkMOBFnBW18zSLKAAwfSlJJKlo+mTloIKGag
LTaWNL+aMqvHzJAFS4pIyVjfYeOwnhS/+ik4OjaopeXc2q0iv6sqSaumir1n+xqA
d3fEBn32KQQpS8sjl2Jyjrz6KB544eX6B/1CB3hhe+JVvnpSwJxtRLyBAoGAZKlH
BzI8ZgxyGY1S3hoOyEFcROx8xPKLRwbuK5nK+YqrCOqQpnh6lfcHmsz4axz1yS29
6SESoVeT6nuJft/ttc4nlZ4wP8/SlYLgrMfGZ3FLgNz+i6uPWT88w5AX+xiyqO7F
AObrI4i+7/CYZ8PZiAaOfScQqmutqyswCtH28oECgYEAiDjckoxACYxOV1Sc48IA
b46DDSPjyn7DvGXOIE2OxgTMuvYIiLCV5te682C/kcWivAF94XUPLOtT9RAhemPd
xvJUHl2IAW+3WbPruHUklyR4yCm/XsgOzaLpNY14LZVbO87KMx3am6VjqRWpnULn
pvalTGSViYlpygyGB2HCNNw=
-----END PRIVATE KEY-----
"""

    /// The same certificate and key as PKCS#12, password `test` (`openssl pkcs12 -export`).
    static let pkcs12Base64 = [
        "MIIJ/wIBAzCCCbUGCSqGSIb3DQEHAaCCCaYEggmiMIIJnjCCBBIGCSqGSIb3DQEHBqCCBAMwggP/AgEAMIID+AYJKoZIhvcNAQcB",
        "MFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAjEqhdNvuMw/gICCAAwDAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEAeQ",
        "1d+dF74xENNj5Uv1euaAggOQrooPCM4Vt19NPqC7TK/Gl8vVhuRjIFqpGg3QDqz3/eVyTXriPZZIYfNGuTyxPkw88hR/54fHCifW",
        "sGhwHQy3/gOozWKJttlR7QewkrCkhjayFQ7JBjmyFQF9KOebMjogMZeDDmGg8EIFPlQ5exXcOth1EB4/mKb1zm4Ske/4K++kcPpB",
        "Gsl+GXfWWYLIPERnHQMOQ5QYsfZGVyEopuL5udGnrhzv71GWrdnAYL588f1S0bHT9Rqv7tA1qyGoeHND70RwugdQWGB6oWSWfeVa",
        "CiN94wcUzgPEh1AA4TeLa5iLLUCRVuzFXA4s1gMvmAmVMD0xJDq4G6Uh4UkAuqEQbN3TTtBqMpEFudIiAH2fy1YigA86mFyTiVa+",
        "kQtzU9d0V5X/69NHWel7CQEFdorQsE/tX+iij6L+1j9K3ePOTaVOy3PtXO089hvNnN2LFp4fECXX7blKvDG6bi0Cs4hju7XBnvqQ",
        "GfD5muO2oa7dUJVzTVFt89EZzTvLrBLiu7FlXyeSEi1x/ha9Tmj5Bobk8TNt9IzefJR6uBdCrZ4ncrV2EfM5sXYQzYnAsPPfTl1d",
        "hC1O1p6MvxvjwPZHaVmbLISjVA0593YtcFdpbeVuibnH+eTl4NxJxj7QTvOlt9QSyOytJoO989qgYtTs/tjTxnbzIi3aWxd/3hIb",
        "RHSbtbaYsEg4Z1dXn+nl/E0h1OWan3HmdJO/MEVqEiXDA5yOajaSJ0OQLLVzBi+EBGkB5DlfG9PbTDD7hici4sDV8KxPV2FW/3wp",
        "pPSwIko4tw1FxoY+2yW/V4ES2YURj0d8mbF6rDAOjBWn682rYf0I+W915uIh7nK8VdKqqWZoa/rJ/+jOhSDjp+mQWUv5UUJ9vlkT",
        "+miz2xUeKJhRtR+T2yn+OR7VQtC6Ovy111Y8NJ0hm3yANJf77EaHH8f4WYTGYBNncPk5NHIe5NPzyHNSAgMPwp0SPVajyXgi82g0",
        "pACBgp4tUMYuTYYLKUSR7kSHigL9sApJJ7c1vUrFUHn0uj6oKogx1uDgsICNGj3Ygsln7eFppYn3CwC9cO+SyM87O9mL1WAA8hTx",
        "Nu5t4L3tqYfNZUVwh7oex4GPxjRMk5bGd5fo8OEsv4XsSR0o999TwFb/n7iVEN1ur+Z7knMOCpFdMa283iJ7nd0+WfrRHjzffb3U",
        "wCOqKJIJ8vdJI2RAL73OpGq4EJe2n9HghqJwQM4HMIIFhAYJKoZIhvcNAQcBoIIFdQSCBXEwggVtMIIFaQYLKoZIhvcNAQwKAQKg",
        "ggUxMIIFLTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQIqE53GPi8N4ICAggAMAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUD",
        "BAEqBBCjDXpH0z7XlITed1b9fjHDBIIE0OwLygK7US7IXFyIPBpCyXdQVWRgoNrHk0xRK/EXtemyqjVl9FVqwp0+RYxrXe29rrJV",
        "gZzuHFupjVpHqD803JcripV8wdYKYUM1J1mNq89Iu1lvlxpKIX6sXzj1WJ0LLCZq/tcn4fRhuJaPew9xMkMijb2BlmojZ/C8BnE3",
        "GgHHBZML10ASVZcN+3jom6QP/dJT74eFp/MMGsyZNdIv/neKge/ZaniP1D1x2H692H4gdAdJx3+lmhjcBccKhIv9AtpSiNIP6WzC",
        "vHrsaiD4pSW50WJSxCpePuR/2GyrfH5mB5prSp3HC9yrFOV5r10E9N2Zn+cpbzgh77kxX920RiQ+lwYLv1Iso3KCdKkbf92ab6BC",
        "5J9bL6fCX3kzr2nMdhg+myNA60cARD+SC3CbdWDF3cpHlMJpY07vowrPEO7rgqsLkT1AJrMC9tsssezeldNGsE1dE0SKXuvXHuTS",
        "tpAIlsjLLCu5OtA7ZrQlQ4FUsEKfta8bPNpzqqeaZxqQa3YCR1Ss35fNntqkcgDnNP4+Mvl8Qp/mrxnSOkdUcG5arRwBoKkPUfdI",
        "6pdhExNQRnGaBESBTTJzDcTqW9KQ56d1FOmAatgJ71BEikKt9nz8NH/LTf+CaRtW/qesvx0lvaJ/rRVqN4b7YKVreLMdR8MYo+TT",
        "/VTuFn5s8trGb2lqHX878cvbRXE++L8Yearo01V5OZWjOwRP2vClcrjXPl7tTDJN0SXWdrEDkBYY/uYpD3CyeOeqsI0qb40LnYwc",
        "RM60gU91q3dHn/BXFMXS+jn39yV6KQ5T2aY6+jEvyAdn/gj8k006vfdf30uPeLvK5cueLojHcEwAUNnsMPjkca/VZ0iv/7BJd1gJ",
        "h22cqTJF6ktQQrutvbV54DcHSLtLxg/zcPaY19Ip7FdcBYCfPnuZfu+zgxypQcxgg35WY1KRwCle4Xg+GnkWcUpLdxQS5LfTRCGI",
        "tUfm+1rdWub3GCOmXnFYW1Uy+n5s3WnFNH+OEmtqmE5FlzzpF21yClF4pxOpigYO46u+9qRVpSjFoX9s9fDH/xt/MvBPU4ry6glq",
        "vmd91n4LJtEV0nN5AhkWyqDs0QhfMZHgRvo/oX3z9gkDR/kur+hTQlR+QK2vFT321c1U9Kf6ULFM0OQAdI5hhRCuO6/IdMx6jwri",
        "Ki3/7q2fqHwBP4FI59TBr/yvZ/QDEsvD7Ch5V2WVTJ+RhPqHWOF/xl5fbjEw3/3UlWYo0xr46PeRRhu0cwM+mJQTe9DAxkL1u6WT",
        "888rCx4H4/3A3sfyyUDNnVFtj3qFkTs9UrWL/2jYD4VOPiia8kj8cuRizgBQ3W6AWdcb+Og0DEEsR+mA2uyhuO+bJxIgo3oTMX7m",
        "2X71OW0QT7TMu3iM2eKic/X4n7T4dsJT0fsNNq/NTmDMKX2DSc2ctzZAJC8jScHRU+zUN9pNnBJHU8GQr/yB7AzwmThOd7TJHjTw",
        "9SVvceHh1SMFm9gFzOvbdi32r28Ka+uzXA4gS6iIm58Xgekr+MwQzAn73EGYHYJx9PHckuMNVMlgsUdUKSq2l6fx35eacKzq45GU",
        "IT4LDW4Mr1mhN9AA6Yc98BhWiJnPsVPnJrNsbmuE54b7ayFpG/7xB/qYVlmgpAB11DLSHY1SmHDIMSUwIwYJKoZIhvcNAQkVMRYE",
        "FKi5F4rBdUilBYJH1o8aIC7D/BJ6MEEwMTANBglghkgBZQMEAgEFAAQgeIydSC3nghgBKvbqy5aqy3kaMnewN99xkd9ps7mzMqEE",
        "CKMLxrY14xc9AgIIAA=="
    ].joined()

    /// Writes the fixtures to a fresh temporary directory and returns the paths.
    static func writeFiles() throws -> (certificate: String, key: String, pkcs12: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tunnel-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("cert.pem")
        let key = directory.appendingPathComponent("key.pem")
        let pkcs12 = directory.appendingPathComponent("bundle.p12")
        try certificatePEM.write(to: certificate, atomically: true, encoding: .utf8)
        try privateKeyPEM.write(to: key, atomically: true, encoding: .utf8)
        try Data(base64Encoded: pkcs12Base64)!.write(to: pkcs12)
        return (certificate.path, key.path, pkcs12.path)
    }
}

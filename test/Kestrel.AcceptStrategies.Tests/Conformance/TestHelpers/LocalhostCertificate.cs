using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Kestrel.AcceptStrategies.Tests.Conformance;

/// <summary>
/// A self-signed server certificate for localhost, 127.0.0.1 and ::1, made at run time (nothing checked in):
/// RSA 2048, server-authentication EKU, valid from a day ago for thirty days.
/// </summary>
public static class LocalhostCertificate
{
    private static readonly Lazy<byte[]> Pkcs12 = new(Generate);

    /// <summary>
    /// A new instance with its private key; the caller disposes it. Loaded from PKCS#12 because on Linux SslStream
    /// wants a persisted key as a server, which a freshly generated ephemeral one is not.
    /// </summary>
    public static X509Certificate2 Create() => X509CertificateLoader.LoadPkcs12(Pkcs12.Value, password: null);

    /// <summary>Whether <paramref name="certificate"/> carries this certificate's public key (for pinning it).</summary>
    public static bool Matches(X509Certificate? certificate)
    {
        if (certificate is null)
        {
            return false;
        }

        using var ours = Create();
        return ours.GetPublicKey().AsSpan().SequenceEqual(certificate.GetPublicKey());
    }

    private static byte[] Generate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: false));

        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        return certificate.Export(X509ContentType.Pkcs12);
    }
}

// Writes private keys of a PKCS12 keystore as unencrypted PKCS#8 PEM files, which keytool
// cannot do: scripts/kafka-local.sh makes its test certificates with keytool and needs the
// keys as PEM for the broker's PEM keystores and the Rust client's mutual TLS.
// Usage: java PemKey.java STORE PASSWORD OUT_DIR ALIAS...   (writes OUT_DIR/ALIAS-key.pem)

import java.io.FileInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyStore;
import java.util.Base64;

public class PemKey {
    public static void main(String[] args) throws Exception {
        char[] password = args[1].toCharArray();
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) {
            store.load(in, password);
        }
        for (int i = 3; i < args.length; i++) {
            Key key = store.getKey(args[i], password);
            if (key == null || !"PKCS#8".equals(key.getFormat())) {
                throw new IllegalStateException("no PKCS#8 private key under alias " + args[i]);
            }
            String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                    .encodeToString(key.getEncoded());
            String pem = "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n";
            Files.writeString(Path.of(args[2], args[i] + "-key.pem"), pem, StandardCharsets.US_ASCII);
        }
    }
}

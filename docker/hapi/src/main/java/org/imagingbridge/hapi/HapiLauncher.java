package org.imagingbridge.hapi;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * Entry point of the test/demo HAPI FHIR JPA server (FHIR R4, H2).
 *
 * <p>Run contract: {@code java -Xmx768m -jar hapi-launcher.jar --server.port=PORT [--hapi.h2.dir=DIR]};
 * the FHIR base URL is {@code http://127.0.0.1:PORT/fhir} and the server is ready once
 * {@code GET /fhir/metadata} answers 200. SIGTERM closes the Spring context (and the database) cleanly.
 *
 * <p>Spring Boot auto-configurations that would fight HAPI's own wiring are switched off in
 * application.yaml ({@code spring.autoconfigure.exclude}); all HAPI beans come from {@link FhirServerConfig}.
 */
@SpringBootApplication
public class HapiLauncher {

	public static void main(String[] args) {
		SpringApplication.run(HapiLauncher.class, args);
	}
}

package org.imagingbridge.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;

/**
 * The HAPI FHIR JPA server (R4) and its REST endpoint at {@code /fhir/*}.
 *
 * <p>The imported configurations are HAPI's own: the R4 DAOs/resource providers, the generic JPA
 * services, the batch2 job framework (HAPI registers its reindex/expunge jobs at start-up and some
 * DAOs depend on it), the subscription submitter (the DAOs' interceptor chain expects it; no
 * subscription channel type is enabled, so nothing is ever delivered) and the thread pool factory
 * that batch/transaction bundle processing uses.
 */
@Configuration
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionChannelConfig.class,
	ThreadPoolFactoryConfig.class
})
public class FhirServerConfig {

	@Bean
	public JpaStorageSettings jpaStorageSettings() {
		JpaStorageSettings s = new JpaStorageSettings();
		// HAPI reuses the result of an identical search for 60 s by default: a search run right
		// after an update would return the stale result. Tests need read-your-writes.
		s.setReuseCachedSearchResultsForMillis(0L);
		// A reference to a resource that does not exist is rejected (default, stated on purpose:
		// the bridge must create Patient/Endpoint before the ImagingStudy that points at them).
		s.setEnforceReferentialIntegrityOnWrite(true);
		s.setEnforceReferentialIntegrityOnDelete(true);
		s.setAutoCreatePlaceholderReferenceTargets(false);
		// Test clean-up: DELETE /fhir/ImagingStudy?identifier=... may match several resources,
		// and _expunge=true / $expunge really removes them.
		s.setAllowMultipleDelete(true);
		s.setExpungeEnabled(true);
		s.setDeleteExpungeEnabled(true);
		// DELETE ...&_expunge=true runs as an asynchronous batch2 job. Without fast tracking every
		// job step waits for the once-a-minute maintenance pass (minutes); with it, under a minute.
		// For synchronous clean-up use a plain DELETE followed by POST /fhir/$expunge.
		s.setJobFastTrackingEnabled(true);
		return s;
	}

	/** Partitioning off (one tenant); HAPI still needs the bean. */
	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** No subscription channel type is enabled: the submitter config loads but never delivers. */
	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	@Bean
	public RestfulServer fhirRestfulServer(
			IFhirSystemDao<?, ?> systemDao,
			ResourceProviderFactory resourceProviders,
			JpaSystemProvider<?, ?> systemProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			BulkDataExportProvider bulkDataExportProvider) {
		RestfulServer server = new RestfulServer(systemDao.getContext());
		// One provider per R4 resource type (CRUD, conditional create/update/delete, search with
		// _include/_sort, $validate, history ...).
		server.registerProviders(resourceProviders.createProviders());
		// POST /fhir with a batch/transaction Bundle, plus system-level operations.
		server.registerProvider(systemProvider);
		// FHIR Bulk Data Access IG v2 (kick-off GET [base]/$export, Patient/$export,
		// Group/[id]/$export; status polling; NDJSON files as Binary): HAPI's own provider and
		// its batch2 export job (imported with Batch2JobsConfig). Only adds these operations.
		server.registerProvider(bulkDataExportProvider);
		// GET /fhir/metadata lists what the JPA server really supports (search params included).
		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		capabilities.setImplementationDescription("imaging-fhir-bridge test EHR (HAPI FHIR JPA, R4, H2)");
		server.setServerConformanceProvider(capabilities);
		// Search result pages are stored in the database, so next-page links work.
		server.setPagingProvider(pagingProvider);
		server.setDefaultResponseEncoding(ca.uhn.fhir.rest.api.EncodingEnum.JSON);
		return server;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer server) {
		ServletRegistrationBean<RestfulServer> reg = new ServletRegistrationBean<>(server, "/fhir/*");
		reg.setName("fhir");
		// Initialise the FHIR servlet at start-up, so "/fhir/metadata answers 200" means "ready".
		reg.setLoadOnStartup(1);
		return reg;
	}
}

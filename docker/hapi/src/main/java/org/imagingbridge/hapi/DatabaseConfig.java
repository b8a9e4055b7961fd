package org.imagingbridge.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import com.zaxxer.hikari.HikariDataSource;
import jakarta.persistence.EntityManagerFactory;
import java.nio.file.Path;
import java.util.Properties;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * H2 database + Hibernate wiring for HAPI's JPA entities.
 *
 * <p>By default the database lives in memory and disappears with the process (what the
 * integration tests want: every run starts empty). {@code --hapi.h2.dir=DIR} keeps it in
 * {@code DIR/hapi.mv.db} instead, e.g. for a demo that should survive a restart.
 */
@Configuration
public class DatabaseConfig {

	private static final Logger LOG = LoggerFactory.getLogger(DatabaseConfig.class);

	@Bean(destroyMethod = "close")
	public HikariDataSource dataSource(
			@Value("${hapi.h2.dir:}") String h2Dir, @Value("${hapi.db.pool-size:10}") int poolSize) {
		String url;
		if (h2Dir == null || h2Dir.isBlank()) {
			// DB_CLOSE_DELAY=-1: keep the in-memory database while the pool has no open connection.
			url = "jdbc:h2:mem:hapi;DB_CLOSE_DELAY=-1";
		} else {
			// DB_CLOSE_ON_EXIT=FALSE: let Spring close the pool/database on SIGTERM instead of
			// racing H2's own JVM shutdown hook (which logs errors for in-flight work).
			Path file = Path.of(h2Dir).toAbsolutePath().resolve("hapi");
			url = "jdbc:h2:file:" + file + ";DB_CLOSE_ON_EXIT=FALSE";
		}
		LOG.info("HAPI database: {}", url);
		HikariDataSource ds = new HikariDataSource();
		ds.setJdbcUrl(url);
		ds.setUsername("sa");
		ds.setPassword("");
		// HAPI runs searches on background threads while the request thread holds a connection:
		// a pool of 1-2 can deadlock, 10 is plenty for tests.
		ds.setMaximumPoolSize(poolSize);
		ds.setPoolName("hapi-h2");
		return ds;
	}

	/** HAPI's own entity manager factory (entity packages, dialect wrapper, sequence handling). */
	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			DataSource dataSource,
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(dataSource);

		Properties jpa = new Properties();
		// HAPI's H2 dialect (sequence/column tweaks HAPI relies on).
		jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		// Fresh database every time: let Hibernate create the schema (no Flyway/HAPI migrator needed).
		jpa.put("hibernate.hbm2ddl.auto", "update");
		// No Lucene/Elasticsearch full-text index: plain SQL search is all the tests need, and it
		// saves memory and start-up time.
		jpa.put("hibernate.search.enabled", "false");
		// Hibernate pre-creates a global temporary table per entity for multi-table bulk HQL; HAPI
		// has no multi-table entities, and on H2 some of these DDLs fail (noise in hapi.trace.db).
		jpa.put("hibernate.query.mutation_strategy.global_temporary.create_tables", "false");
		jpa.put("hibernate.query.insert_strategy.global_temporary.create_tables", "false");
		jpa.put("hibernate.show_sql", "false");
		jpa.put("hibernate.format_sql", "false");
		jpa.put("hibernate.jdbc.batch_size", "20");
		jpa.put("hibernate.cache.use_query_cache", "false");
		jpa.put("hibernate.cache.use_second_level_cache", "false");
		jpa.put("hibernate.cache.use_structured_entries", "false");
		jpa.put("hibernate.cache.use_minimal_puts", "false");
		emf.setJpaProperties(jpa);
		return emf;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}
}

package org.imagingbridge.hapi;

import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * How often HAPI's batch2 maintenance pass runs ({@code hapi.batch2.maintenance-interval-ms},
 * default 60000 = HAPI's own). A batch2 job (bulk $export, DELETE ...&_expunge=true) advances
 * from one step to the next at a pass, so a small bulk export takes one to three minutes at
 * the default; a test server may pass {@code --hapi.batch2.maintenance-interval-ms=5000}.
 *
 * <p>The interval is set before HAPI's scheduler registers the maintenance job (it does so
 * once the context is refreshed, reading the service's frequency then).
 */
@Configuration
public class Batch2MaintenanceConfig {

	@Bean
	public static BeanPostProcessor batch2MaintenanceInterval(
			@Value("${hapi.batch2.maintenance-interval-ms:60000}") long intervalMillis) {
		return new BeanPostProcessor() {
			@Override
			public Object postProcessBeforeInitialization(Object bean, String beanName) {
				if (bean instanceof JobMaintenanceServiceImpl service) {
					service.setScheduledJobFrequencyMillis(intervalMillis);
				}
				return bean;
			}
		};
	}
}

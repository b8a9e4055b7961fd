package org.imagingbridge.hapi;

import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.subscription.submit.interceptor.SubscriptionMatcherInterceptor;
import ca.uhn.fhir.jpa.subscription.submit.interceptor.SynchronousSubscriptionMatcherInterceptor;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import org.hl7.fhir.dstu2.model.Subscription;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;

/**
 * FHIR R4 rest-hook Subscription delivery, only when started with
 * {@code --bridge.subscriptions=resthook} (the worklist's order notifications, issue 17).
 *
 * <p>Off by default: the shared test server keeps {@link FhirServerConfig}'s submitter-only
 * wiring (nothing delivered). On: HAPI's subscription processor (matching, the subscription
 * registry and its loader, the rest-hook delivery listener) is imported and the rest-hook
 * channel type is supported, so an active {@code Subscription} with
 * {@code channel.type = rest-hook} is POSTed to (or, with a payload, PUT to
 * {@code endpoint/Type/id}) after each matching write.
 */
@Configuration
@ConditionalOnProperty(name = "bridge.subscriptions", havingValue = "resthook")
@Import(SubscriptionProcessorConfig.class)
public class SubscriptionDeliveryConfig {

	/**
	 * Each write matched right after its commit. HAPI's default interceptor persists the
	 * change and a job submits it every 5 s (measured: deliveries ~5 s after the write); HAPI
	 * picks the synchronous one only with {@code scheduling_disabled=true}, which would stop
	 * its other jobs too. {@code @Primary}: the one HAPI's submit loader registers.
	 */
	@Bean
	@Primary
	public SubscriptionMatcherInterceptor synchronousSubscriptionMatcherInterceptor() {
		return new SynchronousSubscriptionMatcherInterceptor();
	}

	/** The processor's delivery factory needs an e-mail sender; e-mail is not a supported type. */
	@Bean
	public IEmailSender emailSender() {
		return details -> {
			throw new UnsupportedOperationException("e-mail subscriptions are not enabled");
		};
	}

	/** Adds the rest-hook channel type to FhirServerConfig's SubscriptionSettings bean (HAPI keys
	 * the supported types by the DSTU2 enum whatever the FHIR version). */
	@Bean
	public static BeanPostProcessor restHookSubscriptionType() {
		return new BeanPostProcessor() {
			@Override
			public Object postProcessAfterInitialization(Object bean, String beanName) {
				if (bean instanceof SubscriptionSettings settings) {
					settings.addSupportedSubscriptionType(
							Subscription.SubscriptionChannelType.RESTHOOK);
				}
				return bean;
			}
		};
	}
}
